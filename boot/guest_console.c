/* Guest code (the payloads) reports on COM1, the guest's own console (boot/report.h). */
#include "report.h"
#include "serial.h"

const struct sink *const out = &serial_sink;
