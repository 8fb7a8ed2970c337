/* version.h - the program version every binary reports with --version. */
#ifndef RESNET_VERSION_H
#define RESNET_VERSION_H

#define RESNET_VERSION "0.1.0"

#endif
