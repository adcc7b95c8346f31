/* CHECK(call): on a failing kfacpinn call, print the call, its status and the library's
 * message, then exit(1). Shared by the examples. */
#ifndef KFACPINN_EXAMPLES_CHECK_H
#define KFACPINN_EXAMPLES_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "kfacpinn.h"

#define CHECK(call)                                                                            \
    do {                                                                                       \
        kfp_status status_ = (call);                                                           \
        if (status_ != KFP_OK) {                                                               \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, kfp_status_string(status_),         \
                    kfp_last_error());                                                         \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#endif
