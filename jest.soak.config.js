/** npm run test:soak: the long soak (test/soak), alone, on the suite's own setup. */
const base = require('./jest.config.js');
module.exports = { ...base, testMatch: ['**/soak/*.soak.ts'], maxWorkers: 1 };
