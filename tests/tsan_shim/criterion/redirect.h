/* TSan stand-in for Criterion's redirect.h: see criterion.h here. */
#ifndef SN_TSAN_CRITERION_REDIRECT_H
#define SN_TSAN_CRITERION_REDIRECT_H
#include "criterion.h"
/* Criterion captures stderr for later assertions; our tests only use it
 * to keep expected messages off the log, so /dev/null does. */
static inline void cr_redirect_stderr(void)
{
	if (!freopen("/dev/null", "w", stderr))
		perror("cr_redirect_stderr");
}
#endif
