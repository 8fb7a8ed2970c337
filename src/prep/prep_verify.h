/*
 * prep_verify.h - `resnet_prep verify FILE.h5`: checks the format (via
 * prep_inspect), then reads every record: labels in [0, num_classes), raw
 * images readable, jpeg offsets strictly increasing from 0 to the byte count
 * and every JPEG decodable. Under mpirun the ranks split the records; the
 * first bad split/index is reported and all ranks exit 2. Collective.
 */
#ifndef RESNET_PREP_VERIFY_H
#define RESNET_PREP_VERIFY_H

/* argv[0] is "verify". Returns the exit code. */
int prep_verify_main(int argc, char **argv);

#endif
