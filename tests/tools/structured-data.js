#!/usr/bin/env node
// Checks the structured data (JSON-LD) of HTML files with structured-data-testing-tool, offline:
// it is given each page's HTML, never a URL, so nothing is fetched. Prints one JSON object:
// {file: {"types": [...], "failed": [...], "warnings": [...]}}; exit status 1 if any test failed.
// Usage: node structured-data.js PRESET_NAMES FILE...   (PRESET_NAMES: comma-separated, or "")
const fs = require('fs')
const { structuredDataTest } = require('structured-data-testing-tool')
const presets = require('structured-data-testing-tool/presets')

const describe = (test) => `${test.description || test.test}${test.error ? `: ${test.error.message}` : ''}`

;(async () => {
  const [presetNames, ...files] = process.argv.slice(2)
  const chosen = presetNames ? presetNames.split(',').map(name => presets[name]) : []
  const report = {}
  let failed = false
  for (const file of files) {
    const html = fs.readFileSync(file, 'utf8')
    let result
    try {
      result = await structuredDataTest(html, { presets: chosen })
    } catch (e) {
      if (e.type !== 'VALIDATION_FAILED') throw e
      result = e.res
    }
    report[file] = {
      types: result.schemas,
      failed: result.failed.map(describe),
      warnings: result.warnings.map(describe),
    }
    failed = failed || result.failed.length > 0
  }
  console.log(JSON.stringify(report, null, 1))
  process.exit(failed ? 1 : 0)
})()
