/* The part of the UEFI ABI (UEFI 2.x specification, chapter 4 "EFI System Table") that the
 * AArch64 loader calls, declared here because the arm64 image is built without gnu-efi:
 * Debian's gnu-efi for arm64 cannot be installed beside the amd64 one (both own
 * /usr/lib/libefi.a), and the image needs only these tables. On AArch64 the firmware's
 * calling convention is the platform's (AAPCS64), so the services are plain C pointers.
 * Only the members the loader uses are named; the others keep their slot as `void *`. */
#ifndef BOOT_LOADER_ARM64_UEFI_ABI_H
#define BOOT_LOADER_ARM64_UEFI_ABI_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t efi_status;
typedef void *efi_handle;

#define EFI_SUCCESS 0u
#define EFI_ERROR_BIT (1ull << 63)
#define EFI_BUFFER_TOO_SMALL (EFI_ERROR_BIT | 5u)
#define EFI_NOT_FOUND (EFI_ERROR_BIT | 14u)
#define EFI_OUT_OF_RESOURCES (EFI_ERROR_BIT | 9u)
#define EFI_ABORTED (EFI_ERROR_BIT | 21u)
#define efi_failed(st) (((st)&EFI_ERROR_BIT) != 0)

struct efi_guid {
    uint32_t d1;
    uint16_t d2, d3;
    uint8_t d4[8];
};

struct efi_table_header {
    uint64_t signature;
    uint32_t revision, header_size, crc32, reserved;
};

enum efi_allocate_type { EFI_ALLOCATE_ANY_PAGES, EFI_ALLOCATE_MAX_ADDRESS, EFI_ALLOCATE_ADDRESS };

enum efi_memory_type {
    EFI_RESERVED_MEMORY, EFI_LOADER_CODE, EFI_LOADER_DATA, EFI_BOOT_SERVICES_CODE, EFI_BOOT_SERVICES_DATA,
    EFI_RUNTIME_SERVICES_CODE, EFI_RUNTIME_SERVICES_DATA, EFI_CONVENTIONAL_MEMORY, EFI_UNUSABLE_MEMORY,
    EFI_ACPI_RECLAIM_MEMORY, EFI_ACPI_MEMORY_NVS, EFI_MEMORY_MAPPED_IO, EFI_MEMORY_MAPPED_IO_PORT_SPACE,
    EFI_PAL_CODE, EFI_PERSISTENT_MEMORY, EFI_MEMORY_TYPES
};

struct efi_memory_descriptor {
    uint32_t type;
    uint64_t physical_start, virtual_start, pages, attribute;
};

enum efi_reset_type { EFI_RESET_COLD, EFI_RESET_WARM, EFI_RESET_SHUTDOWN };

struct efi_boot_services {
    struct efi_table_header hdr;
    void *raise_tpl, *restore_tpl;
    efi_status (*allocate_pages)(enum efi_allocate_type type, enum efi_memory_type mem, uint64_t pages,
                                 uint64_t *pa);
    efi_status (*free_pages)(uint64_t pa, uint64_t pages);
    efi_status (*get_memory_map)(uint64_t *size, struct efi_memory_descriptor *map, uint64_t *key,
                                 uint64_t *descriptor_size, uint32_t *descriptor_version);
    efi_status (*allocate_pool)(enum efi_memory_type mem, uint64_t size, void **buffer);
    efi_status (*free_pool)(void *buffer);
    void *create_event, *set_timer, *wait_for_event, *signal_event, *close_event, *check_event;
    void *install_protocol_interface, *reinstall_protocol_interface, *uninstall_protocol_interface;
    efi_status (*handle_protocol)(efi_handle h, const struct efi_guid *protocol, void **interface);
    void *reserved, *register_protocol_notify, *locate_handle, *locate_device_path,
        *install_configuration_table;
    efi_status (*load_image)(bool boot_policy, efi_handle parent, const void *device_path, const void *source,
                             uint64_t source_size, efi_handle *image);
    efi_status (*start_image)(efi_handle image, uint64_t *exit_data_size, uint16_t **exit_data);
    void *exit, *unload_image, *exit_boot_services, *get_next_monotonic_count;
    efi_status (*stall)(uint64_t microseconds);
    efi_status (*set_watchdog_timer)(uint64_t timeout_s, uint64_t code, uint64_t data_size, void *data);
};

struct efi_runtime_services {
    struct efi_table_header hdr;
    void *get_time, *set_time, *get_wakeup_time, *set_wakeup_time, *set_virtual_address_map, *convert_pointer,
        *get_variable, *get_next_variable_name, *set_variable, *get_next_high_monotonic_count;
    void (*reset_system)(enum efi_reset_type type, efi_status status, uint64_t data_size, const void *data);
};

struct efi_configuration_table {
    struct efi_guid vendor_guid;
    void *vendor_table;
};

struct efi_system_table {
    struct efi_table_header hdr;
    const uint16_t *firmware_vendor;
    uint32_t firmware_revision;
    efi_handle console_in_handle;
    void *con_in;
    efi_handle console_out_handle;
    void *con_out;
    efi_handle standard_error_handle;
    void *std_err;
    struct efi_runtime_services *runtime_services;
    struct efi_boot_services *boot_services;
    uint64_t table_entries;
    struct efi_configuration_table *configuration_table;
};

/* EFI_LOADED_IMAGE_PROTOCOL, for where the loader itself lies. */
struct efi_loaded_image {
    uint32_t revision;
    efi_handle parent_handle;
    struct efi_system_table *system_table;
    efi_handle device_handle;
    void *file_path, *reserved;
    uint32_t load_options_size;
    void *load_options;
    void *image_base;
    uint64_t image_size;
    enum efi_memory_type image_code_type, image_data_type;
    void *unload;
};

/* EFI_BLOCK_IO_PROTOCOL, for the firmware's own disk DMA after translation is on. */
struct efi_block_io_media {
    uint32_t media_id;
    bool removable_media, media_present, logical_partition, read_only, write_caching;
    uint32_t block_size;
    uint32_t io_align;
    uint64_t last_block;
};

struct efi_block_io {
    uint64_t revision;
    struct efi_block_io_media *media;
    void *reset;
    efi_status (*read_blocks)(struct efi_block_io *self, uint32_t media_id, uint64_t lba, uint64_t bytes,
                              void *buffer);
};

/* EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and EFI_FILE_PROTOCOL, for the configuration file. */
struct efi_file {
    uint64_t revision;
    efi_status (*open)(struct efi_file *self, struct efi_file **file, const uint16_t *name, uint64_t mode,
                       uint64_t attributes);
    efi_status (*close)(struct efi_file *self);
    void *delete_file;
    efi_status (*read)(struct efi_file *self, uint64_t *size, void *buffer);
};
#define EFI_FILE_MODE_READ 1u

struct efi_simple_file_system {
    uint64_t revision;
    efi_status (*open_volume)(struct efi_simple_file_system *self, struct efi_file **root);
};

/* A device path node (EFI_DEVICE_PATH_PROTOCOL): type, subtype, length of the node. */
struct efi_device_path {
    uint8_t type, subtype;
    uint8_t length[2];
};
#define EFI_DEVICE_PATH_END 0x7Fu
#define EFI_DEVICE_PATH_MEDIA 4u
#define EFI_DEVICE_PATH_MEDIA_FILE 4u

#define EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID                                                                       \
    {0x964e5b22, 0x6459, 0x11d2, {0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b}}
#define EFI_DEVICE_PATH_PROTOCOL_GUID                                                                              \
    {0x09576e91, 0x6d3f, 0x11d2, {0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b}}
#define EFI_BLOCK_IO_PROTOCOL_GUID                                                                                 \
    {0x964e5b21, 0x6459, 0x11d2, {0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b}}
#define EFI_LOADED_IMAGE_PROTOCOL_GUID                                                                             \
    {0x5b1b31a1, 0x9562, 0x11d2, {0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b}}
#define EFI_ACPI_20_TABLE_GUID                                                                                     \
    {0x8868e871, 0xe4f1, 0x11d3, {0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81}}

static inline bool efi_guid_equal(const struct efi_guid *a, const struct efi_guid *b)
{
    return __builtin_memcmp(a, b, sizeof *a) == 0;
}

#endif
