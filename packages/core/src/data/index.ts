// exports of core/src/data
export { splitIndices, splitFull, subset, type FullData } from './split.js';
export * from './synthetic.js';
export { encodeClassLabels, type EncodedLabels } from './labels.js';
export { parseCsv, readCsvTable, csvLoader, type CsvRecords, type CsvTable } from './csv.js';
export { parseNpy, encodeNpy, readNpy, npyLoader, type NpyArray, type NpyDType } from './npy.js';
export { readImage, readMask, imagesLoader, IMAGE_EXTENSIONS, type ReadImageOptions } from './images.js';
export { parseJsonl, readJsonl, jsonlLoader, type JsonlRecords, type JsonlFields } from './jsonl.js';
export * from './builtin.js';
export * from './loaders.js';
