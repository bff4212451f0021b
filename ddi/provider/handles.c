/* The wdm DMA IOMMU interface over the IOMMU core. See ddi/include/ddi/provider.h, and
 * docs/ddi.md for the status codes chosen where the reference leaves them open.
 *
 * Objects live in fixed tables. Domain and device handles are not pointers but encoded
 * (tag, generation, index) values, checked against the tables before anything is touched, so a
 * stale or forged handle is an error, not a crash. Tokens are pointers (callers read their
 * public fields) into the token table, and are accepted only if they point at a live entry.
 *
 * Locking: the provider lock covers the object tables and is held briefly; a routine that
 * changes page tables pins its domain (busy count) under the provider lock and then works
 * under the domain's layout lock and its core lock (iommu/domain.c), so maps in different
 * domains run in parallel and a domain cannot be deleted while a routine works on it. Ranks,
 * outermost first: layout lock, provider lock (an attach adds the unit to the domain core
 * under it), domain core lock, unit lock, page pool lock.
 * Callbacks and fault handlers are called with no lock held. */
#include "provider_internal.h"

struct provider provider;

/* The device object a driver passes: a PCI function (see wdm_iommu.h). */
bool pdo_location(const DEVICE_OBJECT *pdo, uint16_t *segment, uint16_t *sid)
{
    if (!pdo || pdo->Type != IOMMU_PCI_DEVICE_OBJECT_TYPE)
        return false;
    *segment = pdo->Segment;
    *sid = (uint16_t)(pdo->Bus << 8 | (pdo->Device & 0x1f) << 3 | (pdo->Function & 7));
    return pdo->Device < 32 && pdo->Function < 8;
}

/* ---- handles ---- */

void *make_handle(uint64_t tag, uint16_t generation, unsigned index)
{
    return (void *)(uintptr_t)(tag << HANDLE_TAG_SHIFT | (uint64_t)generation << 16 | (index + 1));
}

struct ddi_domain *domain_of(PIOMMU_DMA_DOMAIN h)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    unsigned index = (unsigned)(v & 0xffff) - 1;
    if (v >> HANDLE_TAG_SHIFT != TAG_DOMAIN || index >= DDI_MAX_DOMAINS)
        return NULL;
    struct ddi_domain *d = &provider.domain[index];
    return d->in_use && d->generation == (uint16_t)(v >> 16) ? d : NULL;
}

struct ddi_device *device_of(PIOMMU_DMA_DEVICE h)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    unsigned index = (unsigned)(v & 0xffff) - 1;
    if (v >> HANDLE_TAG_SHIFT != TAG_DEVICE || index >= DDI_MAX_DEVICES)
        return NULL;
    struct ddi_device *dev = &provider.device[index];
    return dev->in_use && !dev->from_v1 && dev->generation == (uint16_t)(v >> 16) ? dev : NULL;
}

/* A token pointer is accepted only if it is one of ours and live. */
struct ddi_token *token_of(const void *p)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)&provider.token[0];
    if (a < base || a >= base + sizeof provider.token || (a - base) % sizeof provider.token[0])
        return NULL;
    struct ddi_token *t = (struct ddi_token *)a;
    return t->in_use ? t : NULL;
}

unsigned domain_index(const struct ddi_domain *d)
{
    return (unsigned)(d - provider.domain);
}

uint16_t domain_id(const struct ddi_domain *d)
{
    return (uint16_t)(provider.plat.first_domain_id + domain_index(d));
}

/* Pins a domain for the length of a routine; NULL if the handle is not a live domain. */
struct ddi_domain *domain_get(PIOMMU_DMA_DOMAIN h)
{
    lock_acquire(&provider.lock);
    struct ddi_domain *d = provider.ready ? domain_of(h) : NULL;
    if (d)
        d->busy++;
    lock_release(&provider.lock);
    return d;
}

void domain_put(struct ddi_domain *d)
{
    lock_acquire(&provider.lock);
    d->busy--;
    lock_release(&provider.lock);
}
