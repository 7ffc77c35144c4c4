#ifndef SCRAPEGUARD_CYAML_SHIM_H
#define SCRAPEGUARD_CYAML_SHIM_H
#include <yaml.h>
#endif
