/* timer.h - monotonic wall-clock seconds. Local. */
#ifndef RESNET_TIMER_H
#define RESNET_TIMER_H

double timer_now(void);      /* monotonic seconds */
double timer_unix_now(void); /* seconds since the epoch, for metrics records */

#endif
