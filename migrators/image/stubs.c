/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary: formats not written yet. */
#include "fluid/error.h"
#include "image.h"
static bool no_probe(const uint8_t *h, size_t n) { return false; }
static fc_rc no_open(void *st, struct img_in *in) { return FC_ERR(FC_E_UNSUPPORTED, "not yet"); }
static fc_rc no_wopen(void *st, struct img_out *o, const struct img_wopts *wo, struct fc_sink **s)
{ return FC_ERR(FC_E_UNSUPPORTED, "not yet"); }
static fc_rc no_opt(void *st, const char *k, const char *v) { return FC_ERR(FC_E_INVALID, "no"); }
static const char *const nokeys[] = {NULL};
#define STUB(n) \
const struct img_reader img_##n##_reader = {.name = #n, .state_size = 8, .probe = no_probe, .open = no_open}; \
const struct img_writer img_##n##_writer = {.name = #n, .state_size = 8, .keys = nokeys, .option = no_opt, .open = no_wopen};

STUB(vmdk)
