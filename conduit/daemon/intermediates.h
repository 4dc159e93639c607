/* SPDX-License-Identifier: Apache-2.0 */
/* Intermediate images: what a relocation makes only to carry data — the snapshots of the
 * source servers (`snapshot --name`), the images Cinder uploads source volumes into
 * (`volume-export --image-name`), both on the source, and the images a volume is created
 * from on the target (`volume-import --name N` makes `N-import`). Once the relocation is
 * done they are deleted, unless the request's options say `keep_intermediate: true`. The
 * relocated servers' own images (`image-import`) stay: Nova needs them to rebuild. */
#ifndef FLUID_CONDUIT_INTERMEDIATES_H
#define FLUID_CONDUIT_INTERMEDIATES_H

#include <jansson.h>

#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"

/* The intermediate image names a plan gives: appended to `source` and `target` (arrays of
 * strings). Pure: unit-tested. */
void fc_intermediate_names(const json_t *plan, json_t *source, json_t *target);

/* Deletes them (each only when it is the project's own and carries this relocation's
 * fluid_relocation property; an image already gone is skipped). `request` as the store holds
 * it (relocation_id, options, plan). Returns {"kept":false,"deleted":[{"cloud","id","name"}],
 * "errors":[{"cloud","id"?,"name"?,"error"}]} or {"kept":true}; errors never hold a secret. */
json_t *fc_intermediates_remove(struct fc_os *src, const struct fc_cloud_config *scfg,
                                struct fc_os *dst, const struct fc_cloud_config *dcfg,
                                const json_t *request);

#endif
