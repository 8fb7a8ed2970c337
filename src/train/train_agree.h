/*
 * train_agree.h - every rank must plan the same run. The ranks compare what
 * decides the sequence of steps and collectives: what each rank found in
 * its dataset file (the counts, the image shape, the fingerprint) and the
 * step plan made from it and the flags. A rank that opened another file
 * (say a stale copy staged on one node) would otherwise plan other steps
 * and leave the others waiting in a collective. Collective.
 */
#ifndef RESNET_TRAIN_AGREE_H
#define RESNET_TRAIN_AGREE_H

#include "trainer.h"

/* After the plan is made: returns when every rank agrees; otherwise rank 0
 * prints "error: the ranks disagree: rank R has <what> <value>, rank 0 has
 * <value>" and every rank exits 2. */
void trainer_agree_plan(const Trainer *t);

#endif
