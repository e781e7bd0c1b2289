// libFuzzer's driver, from the toolchain's libclang_rt.fuzzer_no_main archive (deploy/fuzz
// links it). The harness has its own main, so it can pick a target before libFuzzer starts.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
