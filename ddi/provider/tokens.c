/* The provider (ddi/provider/handles.c): Reserved logical ranges: tokens and their segments. */
#include "provider_internal.h"

/* ---- reserved logical ranges (tokens) ---- */

/* The free token slot that has waited longest, marked in use; NULL when DDI_MAX_TOKENS are
 * live. With the provider lock held. */
static struct ddi_token *token_slot_take(void)
{
    if (provider.live_tokens == DDI_MAX_TOKENS || !provider.free_count)
        return NULL;
    struct ddi_token *t = &provider.token[provider.free_slot[provider.free_head]];
    provider.free_head = (provider.free_head + 1) % TOKEN_SLOTS;
    provider.free_count--;
    provider.live_tokens++;
    t->in_use = true;
    return t;
}

/* Frees a token's slot: queued last, or, for a token that was never handed out, first again
 * (so a failed reservation moves no stale token's slot nearer its reuse). With the provider
 * lock held. */
static void token_slot_put(struct ddi_token *t, bool unused)
{
    uint16_t index = (uint16_t)(t - provider.token);
    t->in_use = false;
    t->segments = 0;
    provider.live_tokens--;
    if (unused) {
        provider.free_head = (provider.free_head + TOKEN_SLOTS - 1) % TOKEN_SLOTS;
        provider.free_slot[provider.free_head] = index;
    } else {
        provider.free_slot[(provider.free_head + provider.free_count) % TOKEN_SLOTS] = index;
    }
    provider.free_count++;
}

NTSTATUS NTAPI provider_ReserveLogicalAddressRange(PIOMMU_DMA_DOMAIN Domain, SIZE_T Size,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                                   PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN *LogicalAddressToken)
{
    if (LogicalAddressToken)
        *LogicalAddressToken = NULL; /* R5 */
    if (!Size || (Size & (PAGE_SIZE - 1)) || Size / PAGE_SIZE > DDI_MAX_MAP_PAGES)
        return STATUS_INVALID_PARAMETER_2; /* R2: before the domain */
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* R1 */
    else if (!LogicalAddressToken)
        st = STATUS_INVALID_PARAMETER_6;
    else if (d->has_allocator && ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED; /* R4 */
    else if (!d->has_allocator && !ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED;
    else if (!d->has_allocator && ((*ExplicitLogicalAddress & (PAGE_SIZE - 1)) ||
                                   *ExplicitLogicalAddress >= slpt_iova_limit(&d->core.tables) ||
                                   Size > slpt_iova_limit(&d->core.tables) - *ExplicitLogicalAddress))
        st = STATUS_INVALID_PARAMETER_3; /* R3 */
    if (!NT_SUCCESS(st)) {
        domain_put(d);
        return st;
    }
    uint64_t base = 0;
    bool allocated = false;
    struct ddi_token *t = NULL;
    lock_acquire(&d->layout_lock);
    if (d->has_allocator) {
        uint64_t min = MinLogicalAddress ? *MinLogicalAddress : 0;
        uint64_t max = MaxLogicalAddress ? *MaxLogicalAddress : UINT64_MAX;
        enum iommu_status s = iova_alloc(&d->iova, Size, min, max, &base);
        st = s == IOMMU_OK ? STATUS_SUCCESS
           : s == IOMMU_EINVAL ? STATUS_INVALID_PARAMETER_2
           : s == IOMMU_ENOMEM ? STATUS_INSUFFICIENT_RESOURCES
                               : STATUS_INVALID_PARAMETER_MIX;
        allocated = s == IOMMU_OK;
    } else {
        base = *ExplicitLogicalAddress;
        if (range_has_token(d, base, Size) || any_mapped(d, base, Size))
            st = STATUS_RESOURCE_IN_USE; /* R6 */
    }
    if (NT_SUCCESS(st)) {
        lock_acquire(&provider.lock);
        t = token_slot_take();
        if (t) {
            uint16_t generation = (uint16_t)(t->generation + 1);
            *t = (struct ddi_token){.pub = {base, Size}, .in_use = true, .from_allocator = allocated,
                                    .domain = (int)domain_index(d), .generation = generation ? generation : 1};
            d->tokens++;
        }
        lock_release(&provider.lock);
        if (!t)
            st = STATUS_INSUFFICIENT_RESOURCES;
    }
    if (t) {
        enum iommu_status s = domain_prepare(&d->core, base, Size); /* every table, now */
        if (s != IOMMU_OK) {
            st = s == IOMMU_EEXIST ? STATUS_RESOURCE_IN_USE : status_of(s);
            lock_acquire(&provider.lock);
            token_slot_put(t, true); /* never handed out: back where it was in the queue */
            d->tokens--;
            lock_release(&provider.lock);
        }
    }
    if (!NT_SUCCESS(st) && allocated)
        iova_free(&d->iova, base, Size);
    lock_release(&d->layout_lock);
    if (NT_SUCCESS(st))
        *LogicalAddressToken = &t->pub;
    domain_put(d);
    return st;
}

NTSTATUS NTAPI provider_FreeReservedLogicalAddressRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken)
{
    lock_acquire(&provider.lock);
    struct ddi_token *t = provider.ready ? token_of(LogicalAddressToken) : NULL;
    struct ddi_domain *d = t ? &provider.domain[t->domain] : NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (!t)
        st = STATUS_INVALID_PARAMETER_1;
    else if (t->segments)
        st = STATUS_RESOURCE_IN_USE; /* R16 */
    else
        d->busy++; /* keeps the domain while the token goes */
    lock_release(&provider.lock);
    if (!NT_SUCCESS(st))
        return st;
    lock_acquire(&d->layout_lock);
    lock_acquire(&provider.lock);
    /* Checked again: another free of the same token, or a map on it, may have come first. */
    bool still = token_of(LogicalAddressToken) == t && !t->segments;
    st = still ? STATUS_SUCCESS : token_of(LogicalAddressToken) ? STATUS_RESOURCE_IN_USE : STATUS_INVALID_PARAMETER_1;
    struct ddi_token gone = *t;
    if (still)
        token_slot_put(t, false); /* from here no map can start on it; the slot waits its turn */
    lock_release(&provider.lock);
    if (still) {
        /* The tables it empties go back to the pool only once the units have forgotten them. */
        (void)domain_unprepare(&d->core, gone.pub.LogicalAddressBase, gone.pub.Size);
        if (gone.from_allocator)
            iova_free(&d->iova, gone.pub.LogicalAddressBase, gone.pub.Size); /* R18 */
    }
    lock_release(&d->layout_lock);
    lock_acquire(&provider.lock);
    if (still)
        d->tokens--;
    d->busy--;
    lock_release(&provider.lock);
    return st;
}

uint64_t ddi_token_id(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token)
{
    lock_acquire(&provider.lock);
    struct ddi_token *t = provider.ready ? token_of(token) : NULL;
    uint64_t id = t ? (uint64_t)(uintptr_t)make_handle(TAG_TOKEN, t->generation, (unsigned)(t - provider.token)) : 0;
    lock_release(&provider.lock);
    return id;
}

PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN ddi_token_by_id(uint64_t id)
{
    unsigned index = (unsigned)(id & 0xffff) - 1;
    if (id >> HANDLE_TAG_SHIFT != TAG_TOKEN || index >= TOKEN_SLOTS)
        return NULL;
    lock_acquire(&provider.lock);
    struct ddi_token *t = &provider.token[index];
    bool live = provider.ready && t->in_use && t->generation == (uint16_t)(id >> 16);
    lock_release(&provider.lock);
    return live ? &t->pub : NULL;
}

/* Pins the token's domain; NULL if the token is not live. */
static struct ddi_domain *token_domain_get(const void *token, struct ddi_token **out)
{
    lock_acquire(&provider.lock);
    struct ddi_token *t = provider.ready ? token_of(token) : NULL;
    struct ddi_domain *d = t ? &provider.domain[t->domain] : NULL;
    if (d)
        d->busy++;
    lock_release(&provider.lock);
    *out = t;
    return d;
}

/* The token's domain, pinned and with its layout lock held, so the token cannot be freed
 * while a segment is mapped or unmapped in it; NULL if the token is not live. */
static struct ddi_domain *token_lock(const void *token, struct ddi_token **out)
{
    struct ddi_domain *d = token_domain_get(token, out);
    if (!d)
        return NULL;
    lock_acquire(&d->layout_lock);
    lock_acquire(&provider.lock);
    /* It may have been freed, and its slot given to another domain's token, meanwhile. */
    bool live = token_of(token) == *out && (*out)->domain == (int)domain_index(d);
    lock_release(&provider.lock);
    if (live)
        return d;
    lock_release(&d->layout_lock);
    domain_put(d);
    return NULL;
}

static void token_unlock(struct ddi_domain *d)
{
    lock_release(&d->layout_lock);
    domain_put(d);
}

NTSTATUS NTAPI provider_MapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN LogicalAddressToken, SIZE_T Offset,
                                                ULONG Permissions, PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                                PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment)
{
    struct ddi_token *t;
    struct ddi_domain *d = token_lock(LogicalAddressToken, &t);
    if (!d)
        return LogicalAddressToken ? STATUS_UNSUCCESSFUL : STATUS_INVALID_PARAMETER_1; /* R17: gone or going */
    struct phys ph;
    NTSTATUS st = STATUS_SUCCESS;
    if (Offset & (PAGE_SIZE - 1) || Offset >= t->pub.Size)
        st = STATUS_INVALID_PARAMETER_2; /* R7 */
    else if (!perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_3;
    else if (!phys_from_descriptor(PhysicalAddressToMap, &ph) || ph.pages > (t->pub.Size - Offset) / PAGE_SIZE)
        st = STATUS_INVALID_PARAMETER_4; /* R8, R9: Offset + size <= token.Size */
    else if (!MappedSegment)
        st = STATUS_INVALID_PARAMETER_5;
    else if (!phys_may_map(&ph))
        st = STATUS_ACCESS_DENIED;
    else if (t->segments == DDI_MAX_TOKEN_SEGMENTS)
        st = STATUS_INSUFFICIENT_RESOURCES; /* a count, never memory: R13 holds (docs/ddi.md) */
    else {
        /* The tables are all there (the range is prepared): this allocates nothing (R13). */
        enum iommu_status s = map_phys(d, t->pub.LogicalAddressBase + Offset, &ph, Permissions);
        st = s == IOMMU_OK ? STATUS_SUCCESS : STATUS_RESOURCE_IN_USE; /* R10 */
    }
    if (NT_SUCCESS(st)) {
        /* Recorded under the layout lock (held), which every routine that reads or changes a
         * token's segments holds; the provider lock for the counts. */
        lock_acquire(&provider.lock);
        t->seg[t->segments++] = (struct ddi_segment){(uint32_t)(Offset / PAGE_SIZE), (uint32_t)ph.pages};
        lock_release(&provider.lock);
        MappedSegment->OwningToken = &t->pub;
        MappedSegment->Offset = Offset;
        MappedSegment->Size = ph.pages * PAGE_SIZE; /* R12 */
    }
    token_unlock(d);
    return st;
}

NTSTATUS NTAPI provider_UnmapReservedLogicalRange(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT MappedSegment)
{
    if (!MappedSegment)
        return STATUS_INVALID_PARAMETER;
    struct ddi_token *t;
    struct ddi_domain *d = token_lock(MappedSegment->OwningToken, &t);
    if (!d)
        return STATUS_INVALID_PARAMETER;
    NTSTATUS st = STATUS_SUCCESS;
    uint64_t off = MappedSegment->Offset, size = MappedSegment->Size;
    /* Exactly one segment mapped now: a record spanning two, a part of one, or one unmapped
     * already names none (R14), and changes nothing. */
    unsigned i = 0;
    while (i < t->segments &&
           !((uint64_t)t->seg[i].first * PAGE_SIZE == off && (uint64_t)t->seg[i].pages * PAGE_SIZE == size))
        i++;
    if (i == t->segments)
        st = STATUS_INVALID_PARAMETER; /* R14 */
    else {
        /* The tables stay (pinned): this frees nothing (R13). */
        domain_unmap(&d->core, t->pub.LogicalAddressBase + off, size);
        lock_acquire(&provider.lock);
        t->seg[i] = t->seg[--t->segments];
        lock_release(&provider.lock);
        MappedSegment->Offset = 0; /* R15 */
        MappedSegment->Size = 0;
    }
    token_unlock(d);
    return st;
}
