/*
 * syncbn.h - the communication behind synchronised BatchNorm (--sync-bn):
 * per-rank (count, mean, M2) combined in double in a fixed rank order, and
 * channel sums over ranks in double, on a communicator of its own so they
 * can run while the gradient reducer's thread is active (needs
 * MPI_THREAD_MULTIPLE). Collective: every rank calls the hooks in the same
 * order, as every rank runs the same layers.
 */
#ifndef RESNET_SYNCBN_H
#define RESNET_SYNCBN_H

#include "batchnorm.h"

/* Returns hooks for batchnorm_enable_sync / net_enable_sync_bn. */
const BnSync *syncbn_hooks(void);
void syncbn_free(void);

#endif
