/* Method ids of the test plugin iso_plugin.c, shared with the tests and benchmarks. */
#ifndef ISO_METHODS_H
#define ISO_METHODS_H

#define ISO_M_ECHO 1           /* the input back */
#define ISO_M_CRASH_ON_THIRD 2 /* "call N"; segfaults on its third call in a process */
#define ISO_M_HANG 3           /* sleeps forever */
#define ISO_M_SPIN 4           /* burns CPU forever */
#define ISO_M_ALLOC_FOREVER 5  /* allocates and touches 1 MiB after 1 MiB until malloc fails */
#define ISO_M_OPEN_FILES 6     /* opens /dev/null until it cannot; returns how many, as text */
#define ISO_M_ABORT 7          /* abort() */
#define ISO_M_EXIT 8           /* exit(3) */
#define ISO_M_PID 9            /* the child's pid, as text */
#define ISO_M_SLEEP_MS 10      /* sleeps for the int in the input, in ms */
#define ISO_M_BIG 11           /* returns as many bytes as the size_t in the input */
#define ISO_M_FAIL 12          /* returns PLG_ERR_CONFIG_INVALID with a text */

#endif
