/* The hypervisor's channel on Arm (see hypervisor/hv_channel.h): the PL011, shared line by
 * line. The hypervisor's lines go out as they are; the guest's bytes (trapped writes to the
 * data register) go out behind HV_CHANNEL_GUEST_PREFIX at the start of each of its lines,
 * a line of the hypervisor's that comes while the guest's is unfinished starts on a line of
 * its own, and the guest's bytes are filtered to printable text. So every line without the
 * prefix is the hypervisor's. */
#include "hypervisor/hv_channel.h"

#include <stdbool.h>

#include "common/serial.h"

static bool guest_line_open; /* the last byte out was the guest's, and not its newline */

static void end_guest_line(void)
{
    if (guest_line_open)
        serial_write("\n", 1);
    guest_line_open = false;
}

void hv_channel_write_unlocked(const char *s, size_t n)
{
    end_guest_line();
    serial_write(s, n);
}

void hv_channel_guest_write(const char *s, size_t n)
{
    hv_channel_lock();
    for (size_t i = 0; i < n; i++) {
        if (!guest_line_open)
            serial_write(HV_CHANNEL_GUEST_PREFIX, sizeof HV_CHANNEL_GUEST_PREFIX - 1);
        guest_line_open = s[i] != '\n';
        /* Printable ASCII, tab and newline pass (serial_write makes "\n" "\r\n"); a CR is
         * dropped, and every other control or non-ASCII byte (backspace, ESC and its
         * sequences, other line and form feeds, NUL) goes out as '?': each could move a
         * terminal back over the mark, split a line for a reader that is not grep, or make
         * grep take the log for binary. */
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch < 0x7f))
            serial_write(s + i, 1);
        else if (ch != '\r')
            serial_write("?", 1);
    }
    hv_channel_unlock();
}
