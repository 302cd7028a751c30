/* grid — generates grid cells (网格) of S metres inside districts, the unit
 * grid of GB/T 30428.1 that cases are routed and counted by. Cells become
 * REGION_GRID regions of the same region_set, parent = district code.
 *
 * Projection. Per district, a local equirectangular approximation: one
 * degree of latitude is R·π/180 m and one degree of longitude that times
 * cos(lat0) (R = 6371008.8 m, lat0 = middle latitude of the district's bbox).
 * A cell is S m × S m at lat0; over Jiaozuo's half-degree span its east-west
 * side drifts by under 0.5% north and south of lat0.
 *
 * Code scheme. A cell's code is "<district code>-G<row>-<col>", row and col
 * zero-padded to 4 digits, row 0 the southernmost row and col 0 the
 * westernmost column of the lattice anchored at the district bbox's
 * south-west corner, e.g. 410802-G0012-0007. Codes depend only on the
 * district geometry and S, so the same input gives the same codes. A cell
 * clipped to nothing or to less than 1% of a full cell is dropped, so row
 * and column numbers have gaps. Its name is "<district name> G0012-0007".
 *
 * Cost. O(c) GEOS rectangle tests for c lattice cells of the bbox (prepared
 * district geometry), plus a GEOSIntersection for each boundary cell. */
#ifndef CB_GRID_H
#define CB_GRID_H

#include <stddef.h>

#include "core/err.h"
#include "geo/region.h"

#define GRID_CELL_MIN_M 50.0
#define GRID_CELL_MAX_M 100000.0
#define GRID_MAX_CELLS 2000000u /* per call, counting lattice cells before clipping */

/* Generates the cells of `district` (a district code) or, when district is
 * NULL, of every district in the set. All-or-nothing: 0 with *count cells
 * added (count may be NULL), or a negative CB_E* code with nothing added:
 * CB_EINVALID_FIELD for a size outside [GRID_CELL_MIN_M, GRID_CELL_MAX_M] or
 * more than 9999 rows/columns, CB_ETOO_LARGE beyond GRID_MAX_CELLS,
 * CB_ENOT_FOUND for an unknown district, CB_ECONFLICT when the cells exist. */
int grid_generate(region_set *set, const char *district, double cell_m, size_t *count,
                  cb_error *err);

#endif
