#ifndef SF_SIGNAL_H
#define SF_SIGNAL_H
/* The number of the first trapped signal received (SIGTERM, SIGINT), or 0. */
int sf_signal_pending(void);
#endif
