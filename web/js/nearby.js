// nearby — parking and air quality around the citizen's point, from
// GET /api/v1/nearby?lon=&lat= (with the page's citizen app key): counts and
// values only, never the devices themselves.

import { api, withQuery } from "./api.js";
import { aqiBand } from "./format.js";

// → {parking: {radius_m, total, free}, air: {radius_m, aqi, pm25, distance_m} | null}
export function nearby(lon, lat, key) {
  return api(withQuery("/api/v1/nearby", { lon, lat }), { key });
}

// 优, 良, 轻度污染 … for an AQI (HJ 633-2012).
export function aqiLevel(aqi) {
  return aqiBand(aqi).name;
}
