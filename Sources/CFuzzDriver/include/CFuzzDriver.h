#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (LLVM >= 13), linked in only when built with -sanitize=fuzzer
   (scripts/fuzz); metactl-fuzz calls it only in that build. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
