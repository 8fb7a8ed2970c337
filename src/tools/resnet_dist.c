/* resnet_dist - data-parallel ResNet training; see `resnet_dist --help`. */
#include "train.h"

int main(int argc, char **argv)
{
    return train_main(argc, argv);
}
