// Integration tests talk to real servers: generous limits, never failing on timing alone.
jest.setTimeout(180_000);
