#ifndef SCRAPEGUARD_CZLIB_SHIM_H
#define SCRAPEGUARD_CZLIB_SHIM_H
#include <zlib.h>
#endif
