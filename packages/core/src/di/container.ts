import { Container, ContainerModule, type ContainerModuleLoadOptions } from 'inversify';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { PLUGIN_INDEX, SLOTS, TOKENS, type Slot } from './tokens.js';
import { UserError } from '../errors.js';

export interface PluginIndexEntry {
  slot: Slot;
  name: string;
  /** Who registered it (package name or plugin file). */
  source: string;
}

/**
 * Bind `value` to slot `slot` under `name`, and record it in the plugin index. Use inside a ContainerModule:
 * `new ContainerModule((o) => bindPlugin(o, 'backbone', 'onnx', onnxBackboneFactory, '@sop/backbone-onnx'))`.
 */
export function bindPlugin<T>(
  options: Pick<ContainerModuleLoadOptions, 'bind'>,
  slot: Slot,
  name: string,
  value: T,
  source = 'user',
): void {
  options.bind(TOKENS[slot]).toConstantValue(value).whenNamed(name);
  options.bind<PluginIndexEntry>(PLUGIN_INDEX).toConstantValue({ slot, name, source });
}

/** A container with core's own bindings; pass package modules to load them as well. */
export async function createContainer(modules: ContainerModule[] = []): Promise<Container> {
  const container = new Container();
  for (const m of modules) await container.load(m);
  return container;
}

/** Registered names per slot (what `sop plugins --json` prints). */
export function listPlugins(container: Container): Record<Slot, string[]> {
  const out = Object.fromEntries(SLOTS.map((s) => [s, [] as string[]])) as Record<Slot, string[]>;
  const entries = container.isBound(PLUGIN_INDEX) ? container.getAll<PluginIndexEntry>(PLUGIN_INDEX) : [];
  for (const e of entries) if (!out[e.slot].includes(e.name)) out[e.slot].push(e.name);
  for (const s of SLOTS) out[s].sort();
  return out;
}

/**
 * Resolve the plugin `name` in `slot`. An unknown name is a UserError naming it and listing the known names.
 * `where` is the config key path shown in the error (e.g. `backbone.use`).
 */
export function resolvePlugin<T>(container: Container, slot: Slot, name: string, where = `${slot}.use`): T {
  if (typeof name !== 'string' || name.length === 0) {
    throw new UserError(`${where}: expected a plugin name, found ${JSON.stringify(name)}`, `set ${where} to one of: ${listPlugins(container)[slot].join(', ')}`);
  }
  if (!container.isBound(TOKENS[slot], { name })) {
    const known = listPlugins(container)[slot];
    throw new UserError(
      `${where}: unknown ${slot} plugin '${name}'`,
      `use one of: ${known.join(', ') || '(none registered)'}; or load a plugin that provides it with plugins: [path] or --plugin`,
    );
  }
  return container.get<T>(TOKENS[slot], { name });
}

/**
 * Load user plugins: each spec is a file path (relative to `baseDir`) or a package name. The module must export a
 * ContainerModule as `default` or as `plugin`.
 */
export async function loadPlugins(container: Container, specs: string[], baseDir: string): Promise<void> {
  for (const spec of specs) {
    const looksLikePath = spec.startsWith('.') || spec.startsWith('/') || /\.(m?[jt]s)$/.test(spec);
    let url = spec;
    if (looksLikePath) {
      const file = isAbsolute(spec) ? spec : resolve(baseDir, spec);
      if (!existsSync(file)) {
        throw new UserError(`plugin file not found: ${file}`, 'check the path in plugins: [...] or --plugin (relative paths are resolved from the config file\'s folder)');
      }
      url = pathToFileURL(file).href;
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(url)) as Record<string, unknown>;
    } catch (e) {
      throw new UserError(`could not load plugin '${spec}': ${(e as Error).message}`, 'check that the file or package exists and exports a ContainerModule', { cause: e });
    }
    const m = (mod.default ?? mod.plugin) as unknown;
    if (!(m instanceof ContainerModule) && !(m && typeof m === 'object' && 'load' in (m as object))) {
      throw new UserError(`plugin '${spec}' does not export a ContainerModule`, 'export default new ContainerModule((o) => bindPlugin(o, slot, name, value))');
    }
    await container.load(m as ContainerModule);
  }
}
