/*
 * train_bench.h - resnet_dist --bench: timed training steps, then the same
 * allreduces alone, printed by rank 0 as one JSON line for bench/run_bench.sh.
 */
#ifndef RESNET_TRAIN_BENCH_H
#define RESNET_TRAIN_BENCH_H

#include "trainer.h"

/* After trainer_setup and trainer_start_inputs. Returns the exit code. */
int trainer_bench(Trainer *t);

#endif
