import { aggregateBinaryScore, aggregateLogprobScore, aggregateScore, parseScoreToken } from '../../lib/judge/judge';

const lp = (pairs: [string, number][]) => pairs.map(([token, p]) => ({ token, logprob: Math.log(p) }));

describe('aggregateLogprobScore (paper: Σk·p(k)/Σp(k) over integer tokens 0..100, null below 0.25 mass)', () => {
  test('weighted mean over numeric tokens, ignoring the rest', () => {
    // (85·0.5 + 90·0.3) / 0.8 = 86.875
    expect(aggregateLogprobScore(lp([['85', 0.5], ['90', 0.3], ['REFUSAL', 0.2]]))).toBeCloseTo(86.875, 10);
  });
  test('" 85" counts as 85', () => {
    expect(aggregateLogprobScore(lp([[' 85', 0.9]]))).toBeCloseTo(85, 10);
    expect(aggregateLogprobScore(lp([['85\n', 0.3], ['15', 0.3]]))).toBeCloseTo(50, 10);
  });
  test('"85.5", "abc", ">100" and negative tokens do not count', () => {
    expect(aggregateLogprobScore(lp([['85.5', 0.3], ['abc', 0.1], ['101', 0.1], ['-5', 0.1], ['40', 0.4]]))).toBeCloseTo(40, 10);
  });
  test('endpoints 0 and 100 count', () => {
    expect(aggregateLogprobScore(lp([['0', 0.5], ['100', 0.5]]))).toBeCloseTo(50, 10);
  });
  test('the 0.25 rule: mass 0.26 scores, mass 0.24 is null', () => {
    expect(aggregateLogprobScore(lp([['60', 0.26], ['REFUSAL', 0.74]]))).toBeCloseTo(60, 10);
    expect(aggregateLogprobScore(lp([['60', 0.14], ['80', 0.1], ['REFUSAL', 0.76]]))).toBeNull();
    expect(aggregateLogprobScore(lp([['60', 0.2]]), { minMass: 0.1 })).toBeCloseTo(60, 10);
  });
  test('a refusal (no numeric tokens) and an empty list are null', () => {
    expect(aggregateLogprobScore(lp([['REFUSAL', 0.9], ['I', 0.05], ['Sorry', 0.05]]))).toBeNull();
    expect(aggregateLogprobScore([])).toBeNull();
  });
  test('tokens with the same text are summed', () => {
    expect(aggregateLogprobScore(lp([['50', 0.15], [' 50', 0.15], ['REFUSAL', 0.7]]))).toBeCloseTo(50, 10);
  });
  test('max restricts the range', () => {
    expect(aggregateLogprobScore(lp([['9', 0.5], ['10', 0.5]]), { max: 9 })).toBeCloseTo(9, 10);
  });
  test('parseScoreToken', () => {
    expect(parseScoreToken(' 07 ')).toBe(7);
    expect(parseScoreToken('+5')).toBe(5);
    expect(parseScoreToken('1e2')).toBeNull();
    expect(parseScoreToken('')).toBeNull();
    expect(parseScoreToken('0x10')).toBeNull();
  });
});

describe('other scales from the paper\'s code', () => {
  test('binary: p(YES)/(p(YES)+p(NO)); REFUSAL above both → null; low mass → null', () => {
    expect(aggregateBinaryScore(lp([['YES', 0.6], ['NO', 0.2], ['REFUSAL', 0.2]]))).toBeCloseTo(0.75, 10);
    expect(aggregateBinaryScore(lp([['REFUSAL', 0.5], ['YES', 0.3], ['NO', 0.2]]))).toBeNull();
    expect(aggregateBinaryScore(lp([['YES', 0.1], ['NO', 0.1], ['maybe', 0.8]]))).toBeNull();
    expect(aggregateScore('binary', lp([[' NO', 0.9]]))).toBe(0);
  });
  test('0_10: digits 0..9; REFUSAL above every single digit → null even with enough digit mass', () => {
    expect(aggregateScore('0_10', lp([['REFUSAL', 0.4], ['7', 0.3], ['8', 0.3]]))).toBeNull();
    // (7·0.5 + 8·0.3) / 0.8 = 7.375
    expect(aggregateScore('0_10', lp([['REFUSAL', 0.2], ['7', 0.5], ['8', 0.3]]))).toBeCloseTo(7.375, 10);
    expect(aggregateScore('0_10', lp([['10', 0.9], ['3', 0.1]]))).toBeNull();
  });
  test('0_100 dispatch equals aggregateLogprobScore', () => {
    const t = lp([['30', 0.3], ['70', 0.6]]);
    expect(aggregateScore('0_100', t)).toBe(aggregateLogprobScore(t));
  });
});
