/* Guest code (the payloads) reports on COM1, the guest's own console (boot/common/report.h). */
#include "common/report.h"
#include "common/serial.h"

const struct sink *const out = &serial_sink;
