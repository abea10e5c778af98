/* Tests for common/secretfile.c: a secret others may read or write is
 * refused, so is what is not a regular file or is too long; what is read
 * is the whole file, through a symlink too (Kubernetes mounts Secrets so). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfile.h"

struct dir {
    char path[64];
    char file[96];
};

static void dir_make(struct dir *d)
{
    strcpy(d->path, "/tmp/rvsecretXXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->file, sizeof(d->file), "%s/key", d->path);
}

static void dir_write(const struct dir *d, const char *text, mode_t mode)
{
    FILE *f = fopen(d->file, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(d->file, mode), 0);
}

static void dir_remove(struct dir *d)
{
    char path[128];
    unlink(d->file);
    snprintf(path, sizeof(path), "%s/link", d->path);
    unlink(path);
    snprintf(path, sizeof(path), "%s/fifo", d->path);
    unlink(path);
    rmdir(d->path);
}

static void test_modes(void **state)
{
    (void)state;
    struct dir d;
    dir_make(&d);
    char why[256], *data;
    size_t len;
    static const mode_t good[] = { 0600, 0640, 0440, 0400, 0660 };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        dir_write(&d, "secret\n", good[i]);
        assert_int_equal(secretfile_read(d.file, 1, 100, &data, &len, why, sizeof(why)), 0);
        assert_int_equal(len, 7);
        assert_string_equal(data, "secret\n");
        free(data);
    }
    dir_write(&d, "secret\n", 0644);
    assert_int_equal(secretfile_read(d.file, 1, 100, &data, &len, why, sizeof(why)), -EPERM);
    assert_null(data);
    assert_string_equal(why, "others may read it (mode 0644): a secret must be readable by its owner and group "
                             "only, e.g. chmod 0640 with group rendervisor");
    dir_write(&d, "secret\n", 0602);
    assert_int_equal(secretfile_read(d.file, 1, 100, &data, &len, why, sizeof(why)), -EPERM);
    assert_non_null(strstr(why, "others may change it (mode 0602)"));
    dir_write(&d, "secret\n", 0601);
    assert_int_equal(secretfile_read(d.file, 1, 100, &data, &len, why, sizeof(why)), -EPERM);
    /* not a secret (a certificate): any mode */
    dir_write(&d, "cert\n", 0644);
    assert_int_equal(secretfile_read(d.file, 0, 100, &data, &len, why, sizeof(why)), 0);
    free(data);
    dir_remove(&d);
}

static void test_not_a_file_or_too_long(void **state)
{
    (void)state;
    struct dir d;
    dir_make(&d);
    char why[256], path[128], *data;
    size_t len;
    assert_int_equal(secretfile_read(d.path, 1, 100, &data, &len, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "not a regular file");
    snprintf(path, sizeof(path), "%s/fifo", d.path);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(secretfile_read(path, 1, 100, &data, &len, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "not a regular file");
    assert_int_equal(secretfile_read("/nonexistent/k", 1, 100, &data, &len, why, sizeof(why)), -ENOENT);
    assert_string_equal(why, "cannot open: No such file or directory");
    dir_write(&d, "0123456789", 0600);
    assert_int_equal(secretfile_read(d.file, 1, 9, &data, &len, why, sizeof(why)), -EFBIG);
    assert_string_equal(why, "10 bytes, more than the 9 such a file may have");
    assert_int_equal(secretfile_read(d.file, 1, 10, &data, &len, why, sizeof(why)), 0);
    assert_int_equal(len, 10);
    free(data);
    /* through a symlink: the target's mode is what counts */
    snprintf(path, sizeof(path), "%s/link", d.path);
    assert_int_equal(symlink(d.file, path), 0);
    assert_int_equal(secretfile_read(path, 1, 100, &data, &len, why, sizeof(why)), 0);
    free(data);
    assert_int_equal(chmod(d.file, 0604), 0);
    assert_int_equal(secretfile_read(path, 1, 100, &data, &len, why, sizeof(why)), -EPERM);
    dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_not_a_file_or_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
