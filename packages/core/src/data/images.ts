import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import type { DataLoader, DataLoaderOptions, Dataset, DatasetSplit } from '../dataset.js';
import { UserError } from '../errors.js';
import { optPair, optString, requirePath, resolvePath, splitFraction } from './options.js';
import { splitIndices, subset, type FullData } from './split.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff'];

type SharpFn = (typeof import('sharp'))['default'];
let sharpPromise: Promise<SharpFn> | undefined;
async function getSharp(): Promise<SharpFn> {
  sharpPromise ??= import('sharp').then((m) => (m as unknown as { default: SharpFn }).default ?? (m as unknown as SharpFn));
  return sharpPromise;
}

export interface ReadImageOptions {
  /** Resize to [h, w] (bilinear, aspect ratio not kept). */
  size?: [number, number];
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
}

/** Decode one image to channel-first float values in [0, 1]: {data [C*H*W], height, width}. */
export async function readImage(file: string, o: ReadImageOptions): Promise<{ data: Float32Array; height: number; width: number }> {
  const sharp = await getSharp();
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    let img = sharp(file).removeAlpha();
    if (o.channels === 1) img = img.grayscale();
    if (o.size) img = img.resize(o.size[1], o.size[0], { fit: 'fill' });
    raw = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new UserError(`cannot decode image ${file}: ${(e as Error).message}`, 'check that it is a valid PNG/JPEG file, or remove it from the folder', { cause: e });
  }
  const { width, height, channels } = raw.info;
  const hw = width * height;
  const out = new Float32Array(o.channels * hw);
  const src = raw.data;
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < o.channels; c++) {
      const sc = channels >= 3 ? c : 0;
      out[c * hw + p] = src[p * channels + sc] / 255;
    }
  }
  return { data: out, height, width };
}

/** Read a mask image as 0/1 [H*W] (gray > 127 → 1), resized (nearest) to [h, w]. */
export async function readMask(file: string, h: number, w: number): Promise<Float32Array> {
  const sharp = await getSharp();
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    raw = await sharp(file).removeAlpha().grayscale().resize(w, h, { fit: 'fill', kernel: 'nearest' }).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new UserError(`cannot decode mask image ${file}: ${(e as Error).message}`, 'masks must be PNG/JPEG images (white = object)', { cause: e });
  }
  const ch = raw.info.channels;
  const out = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) out[p] = raw.data[p * ch] > 127 ? 1 : 0;
  return out;
}

function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (IMAGE_EXTENSIONS.includes(extname(name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

interface Listing {
  files: string[];
  labels: number[];
  classNames: string[];
}

function listClassFolders(root: string, where: string, classNames?: string[]): Listing {
  requirePath(root, `${where}: image folder`, 'dir');
  const dirs = readdirSync(root)
    .filter((n) => !n.startsWith('.') && statSync(join(root, n)).isDirectory())
    .sort();
  if (dirs.length === 0) {
    throw new UserError(`${where}: image folder ${root} has no class subfolders`, 'put the images in one subfolder per class, e.g. cats/1.png, dogs/2.png');
  }
  const names = classNames ?? dirs;
  const files: string[] = [];
  const labels: number[] = [];
  for (const dir of dirs) {
    const k = names.indexOf(dir);
    if (k < 0) throw new UserError(`${where}: class folder '${dir}' in ${root} is not a training class (${names.join(', ')})`, 'use the same class subfolders in the train and test folders');
    const imgs = listImages(join(root, dir));
    if (imgs.length === 0) throw new UserError(`${where}: class folder ${join(root, dir)} holds no images (${IMAGE_EXTENSIONS.join(', ')})`, 'add images or remove the empty folder');
    for (const f of imgs) {
      files.push(f);
      labels.push(k);
    }
  }
  return { files, labels, classNames: names };
}

function perChannel(v: unknown, channels: number, key: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  const arr = typeof v === 'number' ? new Array(channels).fill(v) : v;
  if (!Array.isArray(arr) || arr.length !== channels || !arr.every((a) => typeof a === 'number' && Number.isFinite(a))) {
    throw new UserError(`data.${key}: expected a number or ${channels} numbers (one per channel), found ${JSON.stringify(v)}`, `set data.${key} to e.g. ${channels === 3 ? '[0.5, 0.5, 0.5]' : '0.5'}`);
  }
  if (key === 'std' && arr.some((a: number) => a === 0)) throw new UserError('data.std: a standard deviation is 0', 'use positive std values');
  return arr as number[];
}

function findMask(masksDir: string, root: string, file: string): string {
  const rel = relative(root, file);
  const exact = join(masksDir, rel);
  if (existsSync(exact)) return exact;
  const stem = rel.slice(0, rel.length - extname(rel).length);
  for (const ext of ['.png', '.PNG']) if (existsSync(join(masksDir, stem + ext))) return join(masksDir, stem + ext);
  throw new UserError(`mask for image ${file} not found: expected ${exact} (or ${join(masksDir, stem + '.png')})`, 'give every image a mask with the same relative file name under the masks folder');
}

interface LoadedImages {
  full: FullData;
  classNames: string[];
  height: number;
  width: number;
}

async function loadFolder(
  options: DataLoaderOptions,
  block: Record<string, unknown>,
  where: string,
  common: { size?: [number, number]; channels: 1 | 3; mean?: number[]; std?: number[]; classNames?: string[] },
): Promise<LoadedImages> {
  const root = resolvePath(options, optString(block, 'path', undefined, where) ?? (() => {
    throw new UserError(`${where}.path is required (a folder with one subfolder per class)`, `set ${where}.path`);
  })());
  const masksRel = optString(block, 'masks', undefined, where);
  const masksDir = masksRel ? resolvePath(options, masksRel) : undefined;
  if (masksDir) requirePath(masksDir, `${where}.masks folder`, 'dir');
  const listing = listClassFolders(root, where, common.classNames);
  const n = listing.files.length;
  let size = common.size;
  const C = common.channels;
  let x: Float32Array | undefined;
  let masks: Float32Array | undefined;
  const chunk = 16;
  for (let start = 0; start < n; start += chunk) {
    const part = listing.files.slice(start, start + chunk);
    const imgs = await Promise.all(part.map((f) => readImage(f, { size, channels: C })));
    for (let k = 0; k < imgs.length; k++) {
      const img = imgs[k];
      if (!size) size = [img.height, img.width];
      if (img.height !== size[0] || img.width !== size[1]) {
        throw new UserError(`image ${part[k]} is ${img.height}×${img.width} but ${listing.files[0]} is ${size[0]}×${size[1]}`, 'set data.size: [h, w] to resize all images to one size');
      }
      if (!x) x = new Float32Array(n * C * size[0] * size[1]);
      x.set(img.data, (start + k) * img.data.length);
    }
    if (masksDir) {
      const [h, w] = size!;
      const ms = await Promise.all(part.map((f) => readMask(findMask(masksDir, root, f), h, w)));
      masks ??= new Float32Array(n * h * w);
      ms.forEach((m, k) => masks!.set(m, (start + k) * h * w));
    }
  }
  const [H, W] = size!;
  if (common.mean || common.std) {
    const mean = common.mean ?? new Array(C).fill(0);
    const std = common.std ?? new Array(C).fill(1);
    const hw = H * W;
    for (let i = 0; i < x!.length; i++) {
      const c = Math.floor(i / hw) % C;
      x![i] = (x![i] - mean[c]) / std[c];
    }
  }
  const full: FullData = {
    inputs: { x: { data: x!, shape: [n, C, H, W] } },
    labels: Float32Array.from(listing.labels),
    ...(masks ? { inputMasks: { data: masks, shape: [n, H, W] } } : {}),
  };
  return { full, classNames: listing.classNames, height: H, width: W };
}

/**
 * `data: {use: images, path: DIR, size?: [h, w], color?: rgb|grayscale, mean?, std?, masks?: DIR, split?: 0.2,
 * test?: {path, masks?}}`. DIR holds one subfolder per class (sorted names = class indices). Images are decoded with
 * sharp, resized to `size` when given (else all must share one size), scaled to [0, 1], then normalised
 * (x - mean) / std per channel when mean/std are given. x is [N, C, H, W]. `masks` holds object masks with the
 * same relative file names (or the same name with .png), white = object, giving `inputMasks` [N, H, W].
 */
export const imagesLoader: DataLoader = {
  name: 'images',
  async load(options: DataLoaderOptions): Promise<Dataset> {
    const color = optString(options, 'color', 'rgb')!;
    if (color !== 'rgb' && color !== 'grayscale') throw new UserError(`data.color: expected rgb or grayscale, found ${color}`, 'set data.color to rgb or grayscale');
    const channels: 1 | 3 = color === 'rgb' ? 3 : 1;
    const common = { size: optPair(options, 'size'), channels, mean: perChannel(options.mean, channels, 'mean'), std: perChannel(options.std, channels, 'std') };
    const train = await loadFolder(options, options, 'data', common);
    let trainSplit: DatasetSplit;
    let testSplit: DatasetSplit;
    const testFraction = splitFraction(options);
    if (options.test !== undefined) {
      if (!options.test || typeof options.test !== 'object') throw new UserError('data.test: expected {path: DIR}', 'set data.test: {path: test/}');
      const test = await loadFolder(options, options.test as Record<string, unknown>, 'data.test', {
        ...common,
        size: [train.height, train.width],
        classNames: train.classNames,
      });
      trainSplit = subset(train.full, Array.from({ length: train.full.labels.length }, (_, i) => i));
      testSplit = subset(test.full, Array.from({ length: test.full.labels.length }, (_, i) => i));
    } else {
      const idx = splitIndices(train.full.labels.length, testFraction, options.seed ?? 0);
      trainSplit = subset(train.full, idx.train);
      testSplit = subset(train.full, idx.test);
    }
    return {
      name: String(options.name ?? 'images'),
      task: 'classification',
      modality: 'image',
      numOutputs: train.classNames.length,
      classNames: train.classNames,
      train: trainSplit,
      test: testSplit,
      meta: { source: resolvePath(options, String(options.path)), size: [train.height, train.width], color, mean: common.mean, std: common.std, seed: options.seed ?? 0 },
    };
  },
};
