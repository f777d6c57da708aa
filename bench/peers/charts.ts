/**
 * Charts of the peers benchmark as PNG, without a browser: Vega-Lite specs compiled to Vega,
 * rendered to SVG by Vega's headless view, rasterised by resvg (with the system's DejaVu fonts).
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { type TopLevelSpec, compile } from 'vega-lite';
import type { AnnRow } from './common.js';
import type { DataResult } from './report.js';

/** Recall below which points are left off the recall chart (they would squash the rest). */
export const MIN_CHARTED_RECALL = 0.5;

/** The SVG of a Vega-Lite spec. */
export async function chartSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A PNG of a Vega-Lite spec, at twice the spec's size. */
export async function chartPng(spec: TopLevelSpec): Promise<Buffer> {
  const svg = await chartSvg(spec);
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  }).render();
  return Buffer.from(png.asPng());
}

const seriesOf = (r: AnnRow): string => r.series ?? r.system;

/** Recall@10 against q/s, one line per system (and way of running it), B = 1 and B = 64 side by side. */
export function recallSpec(result: DataResult): TopLevelSpec {
  const values = result.rows.flatMap((r) =>
    (['qpsB1', 'qpsB64'] as const)
      .filter((f) => r[f] !== undefined && r.recall !== undefined && r.recall >= MIN_CHARTED_RECALL)
      .map((f) => ({
        series: seriesOf(r),
        setting: r.setting,
        recall: r.recall,
        qps: r[f],
        batch: f === 'qpsB1' ? 'B = 1' : 'B = 64',
      })),
  );
  const lowest = Math.min(...values.map((v) => v.recall ?? 1));
  const floor = Math.max(MIN_CHARTED_RECALL, Math.floor((lowest - 0.005) * 100) / 100);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `${result.data.name}: recall@10 vs queries per second (N = ${result.data.n.toLocaleString('en-US')}, d = ${result.data.dim})`,
      subtitle: `up and to the right is better; settings below recall ${MIN_CHARTED_RECALL} left off`,
    },
    background: 'white',
    data: { values },
    facet: { column: { field: 'batch', type: 'nominal', title: null, sort: ['B = 1', 'B = 64'] } },
    spec: {
      width: 380,
      height: 300,
      mark: { type: 'line', point: { size: 50 }, strokeWidth: 2 },
      encoding: {
        x: { field: 'recall', type: 'quantitative', title: 'recall@10', scale: { domain: [floor, 1], padding: 12 } },
        y: { field: 'qps', type: 'quantitative', title: 'queries per second (log)', scale: { type: 'log' } },
        color: { field: 'series', type: 'nominal', title: null, scale: { scheme: 'tableau20' } },
        order: { field: 'recall', type: 'quantitative' },
        tooltip: [{ field: 'series' }, { field: 'setting' }, { field: 'recall' }, { field: 'qps' }],
      },
    },
    config: { legend: { orient: 'bottom', columns: 3, labelLimit: 260 } },
  };
}

/** Load and build time per system, one panel per data set. */
export function loadSpec(results: readonly DataResult[]): TopLevelSpec {
  const panel = ({ data, rows }: DataResult) => ({
    title: `${data.name}, N = ${data.n.toLocaleString('en-US')}`,
    width: 460,
    height: { step: 22 },
    data: {
      values: rows.filter((r) => r.buildS !== undefined).map((r) => ({ system: r.buildLabel ?? r.system, seconds: r.buildS })),
    },
    encoding: {
      y: {
        field: 'system',
        type: 'nominal' as const,
        title: null,
        axis: { labelLimit: 360 },
        sort: { field: 'seconds', op: 'max' as const, order: 'descending' as const },
      },
      x: { field: 'seconds', type: 'quantitative' as const, title: 'seconds' },
    },
    layer: [
      {
        mark: 'bar' as const,
        encoding: { color: { field: 'system', type: 'nominal' as const, legend: null, scale: { scheme: 'tableau20' } } },
      },
      {
        mark: { type: 'text' as const, align: 'left' as const, dx: 3 },
        encoding: { text: { field: 'seconds', type: 'quantitative' as const, format: '.1f' } },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Load and index build time (seconds, shorter is better)' },
    background: 'white',
    vconcat: results.map(panel),
  };
}
