/* OpenBLAS (CBLAS + thread control) and LAPACKE, as one system module. */
#include <cblas.h>
#include <lapacke.h>
