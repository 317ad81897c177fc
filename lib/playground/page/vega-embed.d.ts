/**
 * The part of vega-embed's API the page uses. vega-embed declares its types only under package.json "exports",
 * which this project's TypeScript resolution (moduleResolution node) does not read.
 */
declare module 'vega-embed' {
  export interface EmbedOptions {
    renderer?: 'svg' | 'canvas';
    actions?: boolean;
  }
  export interface Result {
    view: { finalize(): void };
    finalize(): void;
  }
  export default function embed(el: HTMLElement | string, spec: object, opts?: EmbedOptions): Promise<Result>;
}
