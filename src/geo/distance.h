/* distance — great-circle distance between WGS84 points (haversine on the
 * mean Earth radius): accurate to ~0.5 %, enough for "within 50 m" and
 * "nearest first"; GEOS works in degrees and would not give metres. */
#ifndef CB_DISTANCE_H
#define CB_DISTANCE_H

double geo_distance_m(double lon1, double lat1, double lon2, double lat2);

#endif
