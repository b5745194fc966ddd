import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { JsonSchema } from './schema-file.js';

/**
 * Keywords the Homebridge UI form reads that are not JSON Schema. Declaring them keeps ajv in
 * strict mode (so a typo such as `minimun` in the schema fails loudly in the tests) while the form
 * keeps its placeholders and password fields.
 */
export const FORM_KEYWORDS = ['placeholder', 'x-schema-form'] as const;

export interface CheckResult {
  valid: boolean;
  /** The input with the schema's defaults filled in (a copy; the input is never changed). */
  value: unknown;
  errors: ErrorObject[];
}

export type Check = (data: unknown) => CheckResult;

/** Compiles parts of config.schema.json's `schema` into checks that fill in defaults. */
export class SchemaValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<JsonSchema, ValidateFunction>();

  constructor(readonly root: JsonSchema) {
    this.ajv = new Ajv({
      allErrors: true,
      useDefaults: true,
      // The form's `oneOf: [{title, enum}]` choice lists carry no `type` of their own; that is fine.
      strictTypes: false,
    });
    this.ajv.addVocabulary([...FORM_KEYWORDS]);
  }

  /** A check for one node of the schema (the root, a section, or the camera item schema). */
  check(schema: JsonSchema): Check {
    let validate = this.compiled.get(schema);
    if (!validate) {
      // Each node is checked as the property `v` of a wrapper: ajv ignores (and in strict mode
      // rejects) a `default` at a schema's root, and sections and cameras have defaults.
      validate = this.ajv.compile({ type: 'object', properties: { v: schema } });
      this.compiled.set(schema, validate);
    }
    const fn = validate;
    return (data: unknown) => {
      // Defaults are written into the data; work on a copy so the caller's config is untouched.
      const wrapper: { v?: unknown } = data === undefined ? {} : { v: structuredClone(data) };
      const valid = fn(wrapper);
      // An `if` error only says "must match the then schema"; the errors of the `then` itself
      // follow it and name the field.
      const errors = valid
        ? []
        : (fn.errors ?? []).filter((e) => e.keyword !== 'if').map((e) => ({ ...e, instancePath: e.instancePath.replace(/^\/v/, '') }));
      return { valid, value: wrapper.v, errors };
    };
  }

  /** The default value of an object node, as the schema defines it. */
  defaults(schema: JsonSchema): Record<string, unknown> {
    const result = this.check(schema)({});
    if (!result.valid) throw new Error('config.schema.json: the defaults of a section do not validate');
    return result.value as Record<string, unknown>;
  }
}
