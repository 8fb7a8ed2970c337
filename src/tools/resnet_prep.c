/*
 * resnet_prep - prepares HDF5 dataset files for resnet_dist (ImageNet-style
 * class folders, CIFAR, IDX, synthetic) and inspects/verifies them. Runs on
 * one process or under mpirun; everything lives in src/prep/.
 */
#include "prep.h"

int main(int argc, char **argv)
{
    prep_main(argc, argv);
}
