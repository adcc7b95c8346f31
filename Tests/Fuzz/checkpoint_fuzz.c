/*
 * libFuzzer target over the checkpoint loaders: each input is offered as a network checkpoint, as
 * an optimizer checkpoint (bound to a small network and operator) and as a training checkpoint to
 * resume, once as it is and once with its checksums recomputed (so that mutations reach the
 * decoders behind the checksum checks, as a hostile file would). Any status is fine; a crash, a sanitizer report or a leak is a failure. Run by
 * scripts/fuzz.sh, which builds the library with AddressSanitizer and coverage instrumentation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfacpinn.h"

static kfp_net *net;
static kfp_operator *op;
static kfp_problem *problem;
static char path[64];

static void setup(void) {
    int64_t widths[] = {2, 4, 1};
    if (kfp_net_create(widths, 3, NULL, NULL, 0, &net) != KFP_OK || kfp_problem_create("poisson2d_sin", &problem) != KFP_OK ||
        kfp_problem_operator(problem, &op) != KFP_OK) {
        fprintf(stderr, "fuzz setup failed: %s\n", kfp_last_error());
        abort();
    }
    snprintf(path, sizeof path, "/tmp/kfp_fuzz_%d.kfp", (int)getpid());
}

/* kfp_train of a new Adam for `steps` steps on 8 + 4 points, with a checkpoint at `checkpoint`
 * (resumed from it when `resume`). */
static void train_adam(const char *checkpoint, int64_t steps, int resume) {
    kfp_optimizer *adam = NULL;
    if (kfp_optimizer_create_adam(net, op, &adam) != KFP_OK) return;
    kfp_train_options o;
    kfp_train_default_options(&o);
    o.steps = steps;
    o.num_interior = 8;
    o.num_boundary = 4;
    o.checkpoint_path = checkpoint;
    o.resume = resume;
    kfp_train(adam, net, problem, &o, NULL);
    kfp_optimizer_free(adam);
}

/* With KFP_FUZZ_SEEDS set to a folder, writes valid checkpoints there first (the initial corpus):
 * a network, KFAC after one step, Adam, and a training run of two steps. */
static void write_seed(const char *folder, const char *name, const void *bytes, int64_t size) {
    char file[512];
    snprintf(file, sizeof file, "%s/%s", folder, name);
    FILE *f = fopen(file, "wb");
    if (f) {
        fwrite(bytes, 1, (size_t)size, f);
        fclose(f);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *folder = getenv("KFP_FUZZ_SEEDS");
    if (!folder) return 0;
    setup();
    static char bytes[1 << 16];
    int64_t size = 0;
    kfp_optimizer *kfac = NULL, *adam = NULL;
    kfp_batch *batch = NULL;
    if (kfp_net_save_memory(net, bytes, sizeof bytes, &size) == KFP_OK) write_seed(folder, "network", bytes, size);
    if (kfp_optimizer_create_kfac(net, op, &kfac) == KFP_OK && kfp_problem_sample(problem, 8, 4, 0, NULL, &batch) == KFP_OK &&
        kfp_optimizer_step(kfac, net, batch, NULL, 0) == KFP_OK && kfp_optimizer_save_memory(kfac, bytes, sizeof bytes, &size) == KFP_OK)
        write_seed(folder, "kfac", bytes, size);
    if (kfp_optimizer_create_adam(net, op, &adam) == KFP_OK && kfp_optimizer_save_memory(adam, bytes, sizeof bytes, &size) == KFP_OK)
        write_seed(folder, "adam", bytes, size);
    char file[512];
    snprintf(file, sizeof file, "%s/training", folder);
    train_adam(file, 2, 0);
    kfp_batch_free(batch);
    kfp_optimizer_free(kfac);
    kfp_optimizer_free(adam);
    return 0;
}

/* CRC-32 (IEEE), as docs/checkpoint-format.md specifies. */
static uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

/* Rewrites the header's and each section's CRC-32 in place (header: 36 bytes and its CRC; a
 * section: tag, CRC, 64-bit length, payload), as far as the lengths stay within the input. */
static void fix_checksums(uint8_t *p, size_t size) {
    if (size < 40) return;
    put32(p + 36, crc32(p, 36));
    size_t offset = 40;
    while (size - offset >= 16) {
        uint64_t length = 0;
        for (int k = 0; k < 8; k++) length |= (uint64_t)p[offset + 8 + k] << (8 * k);
        if (length > size - offset - 16) return;
        put32(p + offset + 4, crc32(p + offset + 16, (size_t)length));
        offset += 16 + (size_t)length;
    }
}

static void load_all(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!net) setup();
    load_all(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    fix_checksums(fixed, size);
    load_all(fixed, size);
    free(fixed);
    return 0;
}

static void load_all(const uint8_t *data, size_t size) {
    kfp_net *loaded = NULL;
    kfp_optimizer *opt = NULL;
    if (kfp_net_load_memory(data, (int64_t)size, &loaded) == KFP_OK) kfp_net_free(loaded);
    if (kfp_optimizer_load_memory(data, (int64_t)size, net, op, &opt) == KFP_OK) kfp_optimizer_free(opt);
    // As a training checkpoint: resume one step of Adam from it.
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
        train_adam(path, 1, 1);
        unlink(path);
    }
}
