/* replay: runs a libFuzzer harness over saved inputs without libFuzzer.
 *
 * `make test` links each tests/fuzz/fuzz_*.c with this file under gcc
 * ASan/UBSan and runs it on the harness's corpus directory, so every seed
 * and every crash ever found is replayed on each test run. Each argument is
 * a file or a directory whose regular files are replayed in name order. Each
 * input is copied into an allocation of exactly its size, so a read past the
 * end is caught. A failing input aborts the process; a directory with no
 * input fails (exit 1); success prints "replayed N inputs" and exits 0. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    if (!data) {
        fclose(f);
        return -1;
    }
    size_t n;
    while ((n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(data, cap * 2);
            if (!bigger) {
                free(data);
                fclose(f);
                return -1;
            }
            data = bigger;
            cap *= 2;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        perror(path);
        free(data);
        return -1;
    }
    /* exact-size copy: the harness must not read past `len` */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    if (len)
        memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the regular files of `dir` in name order; returns the count or -1. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    long done = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **bigger = realloc(names, cap * sizeof(*names));
            if (!bigger)
                goto out;
            names = bigger;
        }
        if ((names[n] = strdup(de->d_name)) == NULL)
            goto out;
        n++;
    }
    qsort(names, n, sizeof(*names), name_cmp);
    done = 0;
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        struct stat st;
        if (!path) {
            done = -1;
            goto out;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) != 0) {
                free(path);
                done = -1;
                goto out;
            }
            done++;
        }
        free(path);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return done;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            long n = replay_dir(argv[i]);
            if (n < 0)
                return 1;
            if (n == 0) {
                /* a corpus that lost its files would otherwise pass quietly */
                fprintf(stderr, "%s: no inputs to replay (the corpus is empty)\n", argv[i]);
                return 1;
            }
            total += n;
        } else {
            if (replay_file(argv[i]) != 0)
                return 1;
            total++;
        }
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
