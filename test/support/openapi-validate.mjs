// Validates an OpenAPI document (JSON on stdin) with @seriousme/openapi-schema-validator (an ES
// module, hence a process of its own); prints {valid, errors, version}.
import { Validator } from '@seriousme/openapi-schema-validator';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const validator = new Validator();
const result = await validator.validate(JSON.parse(input));
process.stdout.write(JSON.stringify({ valid: result.valid, errors: result.errors ?? null, version: validator.version }));
