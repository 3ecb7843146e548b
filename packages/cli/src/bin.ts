#!/usr/bin/env node
import 'reflect-metadata';
import { runCli } from './app.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
