/* SPDX-License-Identifier: Apache-2.0 */
/* Ground floor: fc_rc names, error messages, fc_spawn/fc_run, hex. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/wait.h>

#include "fluid/error.h"
#include "fluid/rc.h"
#include "fluid/sha256.h"
#include "fluid/spawn.h"

Test(rc, names_round_trip_and_are_stable)
{
    cr_assert_str_eq(fc_rc_name(FC_E_INVALID), "FC_E_INVALID");
    cr_assert_eq(FC_E_NOSPACE, 16, "never renumber");
    for (int i = 0; i < FC_RC__COUNT; i++) {
        fc_rc back;
        cr_assert(fc_rc_from_name(fc_rc_name((fc_rc)i), &back));
        cr_assert_eq(back, (fc_rc)i);
    }
    cr_assert_str_eq(fc_rc_name((fc_rc)999), "FC_E_UNKNOWN");
    cr_assert(fc_rc_transient(FC_E_NET));
    cr_assert(!fc_rc_transient(FC_E_INVALID));
    cr_assert(!fc_rc_transient(FC_E_VERIFY));
}

Test(error, message_and_prefix)
{
    fc_rc rc = FC_ERR(FC_E_INVALID, "tasks[%d].kind: unknown", 2);
    cr_assert_eq(rc, FC_E_INVALID);
    fc_error_prefix("request r-1");
    cr_assert_str_eq(fc_error_msg(), "request r-1: tasks[2].kind: unknown");
    cr_assert_eq(fc_error_last()->rc, FC_E_INVALID);
}

Test(spawn, runs_argv_without_a_shell)
{
    char out[256], err[256];
    int st;
    const char *argv[] = {"/bin/echo", "a;b", "$(x)", NULL};
    cr_assert_eq(fc_run(argv, out, sizeof out, err, sizeof err, &st), FC_OK, "%s", fc_error_msg());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_str_eq(out, "a;b $(x)\n", "metacharacters must reach the program verbatim");
}

Test(spawn, missing_program_and_relative_path)
{
    pid_t pid;
    const char *a1[] = {"/nonexistent/prog", NULL};
    struct fc_spawn sp = {.argv = a1, .fd = {-1, -1, -1}};
    cr_assert_eq(fc_spawn(&sp, &pid), FC_E_NOTFOUND);
    const char *a2[] = {"echo", NULL};
    sp.argv = a2;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_E_INVALID);
    char *p = fc_find_program("echo", "/nonexistent:/bin");
    cr_assert_not_null(p);
    cr_assert_str_eq(p, "/bin/echo");
    free(p);
    cr_assert_null(fc_find_program("../echo", "/bin"));
}

Test(sha256, known_vector_and_hex)
{
    struct fc_sha256 h;
    uint8_t d[32], back[32];
    char hex[65];
    fc_sha256_init(&h);
    fc_sha256_update(&h, "abc", 3);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert(fc_unhex(hex, back, 32));
    cr_assert_eq(memcmp(d, back, 32), 0);
    cr_assert(!fc_unhex("zz", back, 1));
    /* zeros hashed without a buffer equal zeros hashed from one */
    static uint8_t z[100000];
    fc_sha256_init(&h);
    fc_sha256_update_zeros(&h, sizeof z);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_sha256_init(&h);
    fc_sha256_update(&h, z, sizeof z);
    fc_sha256_final(&h, back);
    fc_sha256_free(&h);
    cr_assert_eq(memcmp(d, back, 32), 0);
}
