/* Renders parsed DMAR and IORT tables as readable text or as the JSON documented in
 * docs/iommu-acpi.md. Used by the host tool and by the UEFI loader's discovery report. */
#ifndef IOMMU_ACPI_REPORT_H
#define IOMMU_ACPI_REPORT_H

#include "dmar.h"
#include "fmt.h"
#include "iort.h"
#include "json.h"

void dmar_report_text(const struct dmar_table *t, const struct sink *out);
void dmar_report_json(const struct dmar_table *t, struct json_writer *w);
void iort_report_text(const struct iort_table *t, const struct sink *out);
void iort_report_json(const struct iort_table *t, struct json_writer *w);

/* One scope's path as "BB:DD.F/DD.F/..." into buf. */
void dmar_scope_path_text(const struct dmar_scope *sc, char *buf, size_t size);

#endif
