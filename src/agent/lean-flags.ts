// Imported first by the agent's entry point, before any other module is compiled: V8's
// lite mode (no optimizing compiler, feedback vectors allocated lazily) takes about 8 MiB
// off the idle agent's resident memory (bench/agent-memory.ts). The agent's work is I/O
// and small JSON documents, which the interpreter does at no cost anyone can see.
// CONTINUUM_AGENT_V8_FLAGS replaces the flags ('' for none).
import { setFlagsFromString } from 'node:v8';

export const AGENT_V8_FLAGS = process.env.CONTINUUM_AGENT_V8_FLAGS ?? '--lite-mode';
if (AGENT_V8_FLAGS) setFlagsFromString(AGENT_V8_FLAGS);
