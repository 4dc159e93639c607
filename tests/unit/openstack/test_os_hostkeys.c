/* SPDX-License-Identifier: Apache-2.0 */
/* osa_parse_console_keys: the host keys a server printed on its console become known_hosts
 * lines; anything else on the console (a forged block half-way, bad types, junk in the key,
 * an unfinished block) is left out. */
#include <criterion/criterion.h>
#include <string.h>

#include "hostkeys.h"

#define ED "AAAAC3NzaC1lZDI1NTE5AAAAIGm0zU1dXr3eLqvPq6Rr0b3Yk6o9Jrj3t4cS1fYb2qf7"
#define RSA "AAAAB3NzaC1yc2EAAAADAQABAAABAQC7" \
            "q1e3b9x8Vh2a4XyQb7pZt9G3F5k6m8n0p2r4t6v8x0z2B4D6F8H0J2L4N6P8R0T2V4X6Z8b0d2f4h6j8"

Test(hostkeys, cloud_init_block_with_console_noise)
{
    const char *console =
        "[    1.23] random: crng init done\n"
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:abc root@x (ED25519)\n"
        "-----END SSH HOST KEY FINGERPRINTS-----\n"
        "-----BEGIN SSH HOST KEY KEYS-----\r\n"
        "ssh-ed25519 " ED " root@web\r\n"
        "ssh-rsa " RSA "\n"
        "ssh-dss " RSA "\n"             /* not a type we accept */
        "ssh-ed25519 AAAA;rm -rf /\n"   /* not base64 */
        "ssh-ed25519 AAAA\n"            /* too short to be a key */
        "-----END SSH HOST KEY KEYS-----\n"
        "FLUID-GUEST-READY\n";
    char out[4096];
    size_t n = osa_parse_console_keys(console, "172.24.4.9", out, sizeof out);
    cr_assert_eq(n, 2, "keys: %zu (%s)", n, out);
    cr_assert_str_eq(out, "172.24.4.9 ssh-ed25519 " ED "\n172.24.4.9 ssh-rsa " RSA "\n");
}

Test(hostkeys, last_complete_block_wins)
{
    const char *console = "-----BEGIN SSH HOST KEY KEYS-----\nssh-rsa " RSA "\n"
                          "-----END SSH HOST KEY KEYS-----\nreboot\n"
                          "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 " ED "\n"
                          "-----END SSH HOST KEY KEYS-----\n"
                          "-----BEGIN SSH HOST KEY KEYS-----\nssh-rsa " RSA "\n"; /* cut */
    char out[4096];
    cr_assert_eq(osa_parse_console_keys(console, "h", out, sizeof out), 1);
    cr_assert_str_eq(out, "h ssh-ed25519 " ED "\n");
}

Test(hostkeys, nothing_yet)
{
    char out[256] = "x";
    cr_assert_eq(osa_parse_console_keys("booting...\n", "h", out, sizeof out), 0);
    cr_assert_eq(osa_parse_console_keys("-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 " ED
                                        "\n", "h", out, sizeof out), 0, "unfinished block");
    cr_assert_eq(osa_parse_console_keys("-----BEGIN SSH HOST KEY KEYS-----\n"
                                        "-----END SSH HOST KEY KEYS-----\n", "h", out,
                                        sizeof out), 0, "empty block");
}

Test(hostkeys, output_too_small_stops_cleanly)
{
    const char *console = "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 " ED "\nssh-rsa "
                          RSA "\n-----END SSH HOST KEY KEYS-----\n";
    char out[120];
    size_t n = osa_parse_console_keys(console, "host", out, sizeof out);
    cr_assert_eq(n, 1, "only the first line fits: %zu", n);
    cr_assert(strlen(out) < sizeof out);
}
