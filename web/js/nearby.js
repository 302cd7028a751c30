// nearby — parking and air quality around the citizen's point, from
// GET /api/v1/entities?near=lon,lat,metres (with the page's app key).

import { api, withQuery } from "./api.js";

const PARKING_RADIUS_M = 1000;
const AIR_RADIUS_M = 10000;

function near(lon, lat, radius, type, limit, key) {
  return api(withQuery("/api/v1/entities", { near: `${lon},${lat},${radius}`, type, limit }), { key });
}

// → {parking: {total, free}, air: {aqi, pm25, distance_m} | null}
export async function nearby(lon, lat, key) {
  const [parking, air] = await Promise.all([
    near(lon, lat, PARKING_RADIUS_M, "ParkingSpot", 1000, key),
    near(lon, lat, AIR_RADIUS_M, "AirQualityObserved", 1, key),
  ]);
  const spots = parking.entities.filter((e) => e.values?.occupied);
  const station = air.entities[0];
  return {
    radius: PARKING_RADIUS_M,
    parking: { total: spots.length, free: spots.filter((e) => e.values.occupied.value === 0).length },
    air: station?.values?.aqi ? { aqi: station.values.aqi.value, pm25: station.values.pm25?.value, distance_m: station.distance_m } : null,
  };
}

// 优, 良, 轻度污染 … for an AQI (HJ 633-2012).
export function aqiLevel(aqi) {
  const levels = [[50, "优"], [100, "良"], [150, "轻度污染"], [200, "中度污染"], [300, "重度污染"]];
  return levels.find(([max]) => aqi <= max)?.[1] ?? "严重污染";
}
