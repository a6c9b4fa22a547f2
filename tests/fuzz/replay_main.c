/* Runs a libFuzzer target over files without libFuzzer, so that any compiler (and `make test`)
   replays the committed corpus as a regression test. Arguments are files or directories. */
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
    long len;
    uint8_t *data;
    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    data = (uint8_t *)malloc((size_t)len + 1);
    if (data == NULL || fread(data, 1, (size_t)len, f) != (size_t)len) {
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, (size_t)len);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    int i, files = 0, errors = 0;
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            errors++;
        } else if (S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *entry;
            while (dir != NULL && (entry = readdir(dir)) != NULL) {
                char path[4096];
                if (entry->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof path, "%s/%s", argv[i], entry->d_name);
                if (replay_file(path) == 0)
                    files++;
                else
                    errors++;
            }
            if (dir != NULL)
                closedir(dir);
        } else if (replay_file(argv[i]) == 0) {
            files++;
        } else {
            errors++;
        }
    }
    /* Reaching here means no input tripped an invariant (those abort). */
    printf("replayed %d inputs, %d unreadable\n", files, errors);
    printf("%s corpus replay: %d passed, %d failed\n", argv[0], errors ? 0 : 1, errors ? 1 : 0);
    return errors ? 1 : 0;
}
