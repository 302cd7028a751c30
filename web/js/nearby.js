// nearby — parking and air quality around the citizen's point, from
// GET /api/v1/nearby?lon=&lat= (with the page's citizen app key): counts and
// values only, never the devices themselves.

import { api, withQuery } from "./api.js";

// → {parking: {radius_m, total, free}, air: {radius_m, aqi, pm25, distance_m} | null}
export function nearby(lon, lat, key) {
  return api(withQuery("/api/v1/nearby", { lon, lat }), { key });
}

// 优, 良, 轻度污染 … for an AQI (HJ 633-2012).
export function aqiLevel(aqi) {
  const levels = [[50, "优"], [100, "良"], [150, "轻度污染"], [200, "中度污染"], [300, "重度污染"]];
  return levels.find(([max]) => aqi <= max)?.[1] ?? "严重污染";
}
