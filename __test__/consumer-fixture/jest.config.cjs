module.exports = { testEnvironment: 'node', transform: {}, testMatch: ['**/*.spec.cjs'] }
