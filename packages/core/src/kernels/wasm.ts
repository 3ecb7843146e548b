/**
 * Shared plumbing for the repo's WebAssembly SIMD kernel modules (core's `kernels/`, the baselines' kernels): a
 * synchronous, lazy instantiation of a base64 module (null when the runtime has no WebAssembly SIMD, or when
 * `SOP_WASM=0` forces the JavaScript paths) and a bump arena over the module's memory.
 *
 * Memory: each wrapper call starts with `reset()`, copies its operands above `__heap_base` (`put`), runs the kernel and
 * copies the results out (`read`), so no view into the module's memory escapes (growing the memory detaches views);
 * the one exception is a `KernelBuffer` (kernels/index.ts), an instance of its own whose owner holds views of it.
 * The modules are built from C by `tools/wasm/build-kernels.mjs` (clang, wasm32, -msimd128, no libc).
 */

/** The slice of the WebAssembly JS API used here (the project's `lib` settings carry no WebAssembly types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

/** What every kernel module exports besides its functions. */
export interface WasmArenaExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  __heap_base: { value: number };
}

/** An instantiated kernel module with a bump allocator over its memory. */
export class WasmArena<E extends WasmArenaExports = WasmArenaExports> {
  private base: number;
  private top: number;
  /** Views of the whole memory, renewed when it grows. */
  private buf: ArrayBuffer;
  private u8: Uint8Array;
  private f32all: Float32Array;

  constructor(readonly exports: E) {
    this.base = this.top = heapStart(exports);
    this.buf = exports.memory.buffer;
    this.u8 = new Uint8Array(this.buf);
    this.f32all = new Float32Array(this.buf);
  }

  /** Start a new call: everything allocated before is free again (except what {@link keepAllocated} kept). */
  reset(): void {
    this.top = this.base;
  }

  /** Keep everything allocated so far for the arena's lifetime (e.g. weights copied in once): `reset` returns here. */
  keepAllocated(): void {
    this.base = this.top;
  }

  /** Free everything, including what {@link keepAllocated} kept. */
  resetAll(): void {
    this.base = this.top = heapStart(this.exports);
  }

  /** Reserve `bytes` (16-byte aligned), growing the memory when needed; returns the offset. */
  alloc(bytes: number): number {
    const p = this.top;
    this.top = (p + bytes + 15) & ~15;
    if (this.top > this.buf.byteLength) {
      const mem = this.exports.memory;
      mem.grow(Math.ceil((this.top - this.buf.byteLength) / 65536));
      this.buf = mem.buffer;
      this.u8 = new Uint8Array(this.buf);
      this.f32all = new Float32Array(this.buf);
    }
    return p;
  }

  /** Copy `a` into fresh memory; returns its offset. */
  put(a: Float32Array | Int32Array): number {
    const p = this.alloc(a.byteLength);
    if (a instanceof Float32Array) this.f32all.set(a, p >> 2);
    else this.u8.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), p);
    return p;
  }

  /** A view of n float32 values at offset p (valid until the next alloc; copy before keeping it). */
  f32(p: number, n: number): Float32Array {
    return this.f32all.subarray(p >> 2, (p >> 2) + n);
  }

  /** Copy n float32 values at offset p into `out` (or a new array, which the caller owns). */
  read(p: number, n: number, out?: Float32Array): Float32Array {
    const i = p >> 2;
    if (out) {
      out.set(this.f32all.subarray(i, i + n));
      return out;
    }
    if (n < UNINIT_MIN) return this.f32all.slice(i, i + n);
    const fresh = uninitF32(n);
    fresh.set(this.f32all.subarray(i, i + n));
    return fresh;
  }
}

/** The first free (16-byte aligned) address of a module's memory, above its static data and stack. */
function heapStart(exports: WasmArenaExports): number {
  return (exports.__heap_base.value + 15) & ~15;
}

/** Below this many values a fresh array is zero-filled as usual (see {@link uninitF32}). */
const UNINIT_MIN = 8192;

/**
 * A new float32 array of n values whose memory is not zero-filled first, for callers that overwrite every value
 * before anyone reads it (skipping the fill makes large result arrays ~15% cheaper). It owns its whole buffer, as
 * `new Float32Array(n)` (no pool, no shared memory). Small arrays: `new Float32Array(n)`.
 */
export function uninitF32(n: number): Float32Array {
  if (n < UNINIT_MIN) return new Float32Array(n);
  const b = Buffer.allocUnsafeSlow(n * 4);
  return new Float32Array(b.buffer, b.byteOffset, n);
}

/** A compiled WebAssembly module, or null when the runtime has no WebAssembly or rejects it (e.g. no SIMD support). */
function compile(bytes: Uint8Array): object | null {
  const WA = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!WA) return null;
  try {
    return new WA.Module(bytes);
  } catch {
    return null;
  }
}

/** The exports of a new instance of `mod` (no imports), or null when instantiation fails. */
function instantiate(mod: object | null): unknown {
  const WA = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!mod || !WA) return null;
  try {
    return new WA.Instance(mod, {}).exports;
  } catch {
    return null;
  }
}

/**
 * The exports of a WebAssembly module instantiated synchronously without imports, or null when the runtime has no
 * WebAssembly or rejects the module (e.g. no SIMD support): callers then use their JavaScript paths.
 */
export function wasmExports(bytes: Uint8Array): unknown {
  return instantiate(compile(bytes));
}

/** Compiled modules by source (each instance gets its own memory; compiling once is enough). */
const compiled = new Map<string, object | null>();

/**
 * Instantiate a base64 kernel module (a new instance with its own memory each call; the module is compiled once);
 * null without WebAssembly SIMD or with SOP_WASM=0.
 */
export function instantiateWasm<E extends WasmArenaExports>(base64: string): WasmArena<E> | null {
  if (process.env.SOP_WASM === '0') return null;
  let mod = compiled.get(base64);
  if (mod === undefined) compiled.set(base64, (mod = compile(Buffer.from(base64, 'base64'))));
  const exports = instantiate(mod);
  return exports ? new WasmArena(exports as E) : null;
}

/**
 * A lazily instantiated module with a test switch: `get()` instantiates on first use; `setEnabled(false)` forces the
 * JavaScript paths until `setEnabled(true)` (returns the previous state).
 */
export function lazyWasm<E extends WasmArenaExports>(base64: string): { get(): WasmArena<E> | null; setEnabled(on: boolean): boolean } {
  let instance: WasmArena<E> | null | undefined;
  const get = (): WasmArena<E> | null => {
    if (instance === undefined) instance = instantiateWasm<E>(base64);
    return instance;
  };
  return {
    get,
    setEnabled(on: boolean): boolean {
      const prev = !!instance;
      instance = on ? undefined : null;
      if (on) get();
      return prev;
    },
  };
}
