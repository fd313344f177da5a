/**
 * Request validation for the API (SPEC §11 "strict JSON schema validation"): unknown properties are
 * rejected, never silently dropped (Fastify's default `removeAdditional` would drop them), and JSON
 * bodies are not type-coerced ("5" is not a number). Query strings and path parameters are text by
 * nature, so they are coerced to the declared types.
 */
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function makeAjv(coerce: boolean) {
  const ajv = new Ajv.default({
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: coerce ? 'array' : false,
    allErrors: false,
    strict: false,
  });
  addFormats.default(ajv);
  return ajv;
}

const bodyAjv = makeAjv(false);
const textAjv = makeAjv(true);

export const validatorCompiler: FastifySchemaCompiler<any> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);
