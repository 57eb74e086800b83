//! The statistics of an experiment's results: per variant and metric the mean, and against the
//! control the difference with a confidence interval and a p-value — Welch's t-test for
//! numeric metrics, the two-proportion z-test for boolean ones — an always-valid interval
//! (a normal-mixture confidence sequence) that may be looked at every day without inflating
//! false positives, the minimum detectable effect at the current sample size, and a
//! sample-ratio-mismatch check of the assignment counts.
//!
//! The distribution functions are written here (on `libm`'s erf and lgamma) and pinned
//! against SciPy's values in the tests.

/// Running sums of one metric in one variant: enough for a mean and a variance, mergeable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
    pub sum_of_squares: f64,
}

impl Summary {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.sum_of_squares += value * value;
    }

    pub fn of(values: &[f64]) -> Summary {
        let mut summary = Summary::default();
        values.iter().for_each(|value| summary.add(*value));
        summary
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The sample variance (n - 1 in the denominator).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        ((self.sum_of_squares - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile (Acklam's rational approximation, refined by one Halley step
/// to full double precision).
pub fn normal_quantile(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "a probability strictly between 0 and 1");
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let low = 0.024_25;
    let x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One step of Halley's method on the exact distribution function.
    let error = normal_cdf(x) - p;
    let u = error * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz's method).
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * x.ln() + b * (1.0 - x).ln())
            .exp();
    // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut fraction = d;
    for m in 1..=300 {
        let m = m as f64;
        // The even step.
        let numerator = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 + numerator * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + numerator / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        fraction *= d * c;
        // The odd step.
        let numerator = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + numerator * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + numerator / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        fraction *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * fraction / a
}

/// Student's t distribution function with `df` degrees of freedom (any positive real).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e7 {
        return normal_cdf(t);
    }
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// Student's t quantile, by bisection on the distribution function (to 1e-12).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "a probability strictly between 0 and 1");
    let (mut low, mut high) = (-1e3, 1e3);
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if student_t_cdf(middle, df) < p {
            low = middle;
        } else {
            high = middle;
        }
        if high - low < 1e-12 {
            break;
        }
    }
    (low + high) / 2.0
}

/// The regularized upper incomplete gamma function Q(a, x).
fn upper_incomplete_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_front = -x + a * x.ln() - libm::lgamma(a);
    if x < a + 1.0 {
        // The series for P, then Q = 1 - P.
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * log_front.exp()
    } else {
        // The continued fraction for Q (Lentz's method).
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut fraction = d;
        for i in 1..1000 {
            let i = i as f64;
            let an = -i * (i - a);
            b += 2.0;
            d = an * d + b;
            d = if d.abs() < TINY { TINY } else { d };
            c = b + an / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            let delta = d * c;
            fraction *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        fraction * log_front.exp()
    }
}

/// The chi-square distribution's survival function (the p-value of a statistic).
pub fn chi_square_sf(statistic: f64, df: f64) -> f64 {
    upper_incomplete_gamma(df / 2.0, statistic / 2.0)
}

/// A test of one variant against the control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Treatment mean minus control mean.
    pub difference: f64,
    /// The difference relative to the control's mean (`None` when that is 0).
    pub relative: Option<f64>,
    pub standard_error: f64,
    /// The fixed-horizon interval at the chosen level (valid for one look).
    pub interval: (f64, f64),
    pub p_value: f64,
    /// The always-valid interval: it may be looked at any number of times.
    pub sequential_interval: (f64, f64),
    /// The smallest difference this many units detect with 80 % power at the chosen level.
    pub minimum_detectable_effect: f64,
}

impl Comparison {
    /// Significant at the fixed horizon.
    pub fn significant(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }

    /// Significant by the always-valid interval (it excludes 0).
    pub fn sequentially_significant(&self) -> bool {
        self.sequential_interval.0 > 0.0 || self.sequential_interval.1 < 0.0
    }
}

/// The expected total number of units the sequential interval is tuned for (GrowthBook's
/// default): it is tightest around there, and valid at every size.
pub const SEQUENTIAL_TUNING_UNITS: f64 = 5000.0;

/// The two-sided normal-mixture confidence sequence (Howard et al. 2021, eq. 14) around an
/// estimate with standard error `standard_error` from `units` units in all: a half-width that
/// holds simultaneously for every sample size with probability 1 - `alpha`.
pub fn sequential_half_width(standard_error: f64, units: f64, alpha: f64) -> f64 {
    if units <= 0.0 {
        return f64::INFINITY;
    }
    if standard_error <= 0.0 {
        // No spread at all: the estimate is exact.
        return 0.0;
    }
    let log_alpha = -2.0 * alpha.ln();
    let rho_squared = (log_alpha + (log_alpha + 1.0).ln()) / SEQUENTIAL_TUNING_UNITS;
    // The per-unit variance behind the standard error.
    let unit_variance = standard_error * standard_error * units;
    let n_rho = units * rho_squared;
    (unit_variance * 2.0 * (n_rho + 1.0) / (units * units * rho_squared)
        * ((n_rho + 1.0).sqrt() / alpha).ln())
    .sqrt()
}

fn finish(
    difference: f64,
    control_mean: f64,
    standard_error: f64,
    critical: f64,
    p_value: f64,
    units: f64,
    alpha: f64,
) -> Comparison {
    let half = critical * standard_error;
    let sequential = sequential_half_width(standard_error, units, alpha);
    let power = normal_quantile(0.8);
    Comparison {
        difference,
        relative: (control_mean != 0.0).then(|| difference / control_mean.abs()),
        standard_error,
        interval: (difference - half, difference + half),
        p_value,
        sequential_interval: (difference - sequential, difference + sequential),
        minimum_detectable_effect: (critical + power) * standard_error,
    }
}

/// Welch's t-test of `treatment` against `control` (numeric metrics), two-sided at `alpha`.
/// `None` until each side has two observations.
pub fn welch(control: &Summary, treatment: &Summary, alpha: f64) -> Option<Comparison> {
    if control.count < 2 || treatment.count < 2 {
        return None;
    }
    let (n_c, n_t) = (control.count as f64, treatment.count as f64);
    let (v_c, v_t) = (control.variance() / n_c, treatment.variance() / n_t);
    let standard_error = (v_c + v_t).sqrt();
    let difference = treatment.mean() - control.mean();
    if standard_error == 0.0 {
        let p_value = if difference == 0.0 { 1.0 } else { 0.0 };
        return Some(finish(
            difference,
            control.mean(),
            0.0,
            0.0,
            p_value,
            n_c + n_t,
            alpha,
        ));
    }
    let df = (v_c + v_t).powi(2) / (v_c * v_c / (n_c - 1.0) + v_t * v_t / (n_t - 1.0));
    let t = difference / standard_error;
    let p_value = (2.0 * student_t_cdf(-t.abs(), df)).min(1.0);
    let critical = student_t_quantile(1.0 - alpha / 2.0, df);
    Some(finish(
        difference,
        control.mean(),
        standard_error,
        critical,
        p_value,
        n_c + n_t,
        alpha,
    ))
}

/// The two-proportion z-test of `treatment` against `control` (boolean metrics: `sum` counts
/// the trues): the p-value from the pooled standard error, the intervals from the unpooled one.
pub fn two_proportions(control: &Summary, treatment: &Summary, alpha: f64) -> Option<Comparison> {
    if control.count == 0 || treatment.count == 0 {
        return None;
    }
    let (n_c, n_t) = (control.count as f64, treatment.count as f64);
    let (p_c, p_t) = (control.sum / n_c, treatment.sum / n_t);
    let pooled = (control.sum + treatment.sum) / (n_c + n_t);
    let pooled_error = (pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)).sqrt();
    let difference = p_t - p_c;
    let p_value = if pooled_error == 0.0 {
        1.0
    } else {
        (2.0 * normal_cdf(-(difference / pooled_error).abs())).min(1.0)
    };
    let standard_error = (p_c * (1.0 - p_c) / n_c + p_t * (1.0 - p_t) / n_t).sqrt();
    let critical = normal_quantile(1.0 - alpha / 2.0);
    Some(finish(
        difference,
        p_c,
        standard_error,
        critical,
        p_value,
        n_c + n_t,
        alpha,
    ))
}

/// The sample-ratio-mismatch check: the chi-square goodness-of-fit p-value of the units each
/// variant got against the shares its weight promised. A small p-value (under 0.001, as
/// GrowthBook flags) means the assignment or the recording is broken, not that a variant won.
pub fn sample_ratio_p_value(counts: &[u64], weights: &[f64]) -> Option<f64> {
    let total: f64 = counts.iter().map(|count| *count as f64).sum();
    let weight_sum: f64 = weights.iter().sum();
    if counts.len() < 2 || counts.len() != weights.len() || total == 0.0 || weight_sum <= 0.0 {
        return None;
    }
    let statistic: f64 = counts
        .iter()
        .zip(weights)
        .filter(|(_, weight)| **weight > 0.0)
        .map(|(count, weight)| {
            let expected = total * weight / weight_sum;
            (*count as f64 - expected).powi(2) / expected
        })
        .sum();
    let categories = weights.iter().filter(|weight| **weight > 0.0).count();
    Some(chi_square_sf(statistic, (categories - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal to SciPy's value (1.17.1, printed with `repr`) to `tolerance`, relative.
    fn close(ours: f64, scipy: f64, tolerance: f64) {
        let error = ((ours - scipy) / scipy).abs();
        assert!(
            error < tolerance,
            "ours {ours}, SciPy {scipy} (relative error {error:e})"
        );
    }

    #[test]
    fn distribution_functions_match_scipy() {
        close(normal_cdf(-1.5), 0.066_807_201_268_858_07, 1e-12);
        close(normal_cdf(2.7), 0.996_533_026_196_959_4, 1e-12);
        close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-12);
        close(normal_quantile(0.999), 3.090_232_306_167_813, 1e-12);
        close(normal_quantile(0.01), -2.326_347_874_040_840_8, 1e-12);
        close(normal_quantile(0.8), 0.841_621_233_572_914_3, 1e-12);
        close(student_t_cdf(-2.1, 7.3), 0.036_123_356_712_426_7, 1e-10);
        close(student_t_cdf(0.5, 2.0), 0.666_666_666_666_666_6, 1e-12);
        close(student_t_cdf(3.0, 200.5), 0.998_478_917_916_049_6, 1e-12);
        close(student_t_quantile(0.975, 5.5), 2.501_858_617_589_239, 1e-9);
        close(
            student_t_quantile(0.975, 19.3),
            2.090_824_234_778_765_8,
            1e-9,
        );
        close(student_t_quantile(0.9995, 1.0), 636.619_248_768_789_7, 1e-9);
        close(chi_square_sf(11.3, 3.0), 0.010_209_496_433_133_654, 1e-10);
        close(chi_square_sf(0.5, 1.0), 0.479_500_122_186_953_37, 1e-10);
        close(chi_square_sf(40.0, 10.0), 1.694_474_393_006_737e-5, 1e-9);
    }

    #[test]
    fn welch_matches_scipy_ttest_ind() {
        let control = Summary::of(&[12.1, 14.3, 11.8, 13.0, 15.2, 12.7, 13.9, 14.1, 12.4, 13.3]);
        let treatment = Summary::of(&[
            13.5, 15.1, 14.8, 13.9, 16.2, 14.4, 15.7, 13.2, 14.9, 15.5, 14.0, 16.1,
        ]);
        let result = welch(&control, &treatment, 0.05).unwrap();
        // scipy.stats.ttest_ind(treatment, control, equal_var=False): statistic, p-value,
        // and its confidence_interval(0.95).
        close(
            result.difference / result.standard_error,
            3.343_894_959_671_776,
            1e-12,
        );
        close(result.p_value, 0.003_489_444_059_741_837, 1e-9);
        close(result.interval.0, 0.557_859_906_892_062_1, 1e-9);
        close(result.interval.1, 2.432_140_093_107_936_4, 1e-9);
        assert!(result.significant(0.05));
        // The always-valid interval is wider than the one-look interval.
        assert!(result.sequential_interval.0 < result.interval.0);
        assert!(result.sequential_interval.1 > result.interval.1);
    }

    #[test]
    fn two_proportions_match_scipy_chi2_contingency() {
        let control = Summary {
            count: 1000,
            sum: 120.0,
            sum_of_squares: 120.0,
        };
        let treatment = Summary {
            count: 1000,
            sum: 150.0,
            sum_of_squares: 150.0,
        };
        let result = two_proportions(&control, &treatment, 0.05).unwrap();
        // scipy.stats.chi2_contingency([[150, 850], [120, 880]], correction=False).pvalue:
        // the pooled two-proportion z-test's.
        close(result.p_value, 0.049_640_386_865_368_834, 1e-9);
        close(result.difference, 0.03, 1e-12);
        close(result.relative.unwrap(), 0.25, 1e-12);
        // The MDE at this size: (z(0.975) + z(0.8)) standard errors.
        close(
            result.minimum_detectable_effect,
            (1.959_963_984_540_054 + 0.841_621_233_572_914_3) * result.standard_error,
            1e-9,
        );
    }

    #[test]
    fn sample_ratio_mismatch_matches_scipy_chisquare() {
        close(
            sample_ratio_p_value(&[5050, 4950], &[1.0, 1.0]).unwrap(),
            0.317_310_507_862_911_15,
            1e-9,
        );
        close(
            sample_ratio_p_value(&[1000, 1100, 900], &[1.0, 1.0, 1.0]).unwrap(),
            4.539_992_976_248_486e-5,
            1e-9,
        );
        close(
            sample_ratio_p_value(&[2600, 7400], &[25.0, 75.0]).unwrap(),
            0.020_921_335_337_794_035,
            1e-9,
        );
    }

    /// A fixed pseudo-random stream: xorshift64* and Box-Muller normals.
    struct Random(u64);

    impl Random {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    #[test]
    fn a_over_a_tests_are_significant_at_the_nominal_rate() {
        let mut random = Random(0x853c_49e6_748f_ea9b);
        let experiments = 2000;
        let (mut numeric, mut boolean) = (0, 0);
        for _ in 0..experiments {
            let (mut a, mut b) = (Summary::default(), Summary::default());
            for _ in 0..200 {
                a.add(10.0 + 3.0 * random.normal());
                b.add(10.0 + 3.0 * random.normal());
            }
            numeric += usize::from(welch(&a, &b, 0.05).unwrap().significant(0.05));
            let (mut a, mut b) = (Summary::default(), Summary::default());
            for _ in 0..500 {
                a.add(f64::from(u8::from(random.uniform() < 0.1)));
                b.add(f64::from(u8::from(random.uniform() < 0.1)));
            }
            boolean += usize::from(two_proportions(&a, &b, 0.05).unwrap().significant(0.05));
        }
        println!("A/A false positives of {experiments}: numeric {numeric}, boolean {boolean}");
        // 5 % of 2,000 with a binomial standard deviation of 9.7: within 3 of them.
        for (kind, count) in [("numeric", numeric), ("boolean", boolean)] {
            let rate = count as f64 / experiments as f64;
            assert!((rate - 0.05).abs() < 3.0 * 0.0049, "{kind}: {rate}");
        }
    }

    #[test]
    fn looking_every_day_inflates_the_one_look_test_but_not_the_sequential_one() {
        let mut random = Random(0xda94_2042_e4dd_58b5);
        let experiments = 400;
        let (mut naive, mut sequential) = (0, 0);
        for _ in 0..experiments {
            let (mut a, mut b) = (Summary::default(), Summary::default());
            let (mut naive_hit, mut sequential_hit) = (false, false);
            // Twenty looks, 100 more units per arm between each.
            for _ in 0..20 {
                for _ in 0..100 {
                    a.add(random.normal());
                    b.add(random.normal());
                }
                let result = welch(&a, &b, 0.05).unwrap();
                naive_hit |= result.significant(0.05);
                sequential_hit |= result.sequentially_significant();
            }
            naive += usize::from(naive_hit);
            sequential += usize::from(sequential_hit);
        }
        let (naive, sequential) = (
            naive as f64 / experiments as f64,
            sequential as f64 / experiments as f64,
        );
        println!("false positives over 20 looks: one-look test {naive}, sequential {sequential}");
        assert!(naive > 0.12, "peeking at a one-look test: {naive}");
        // At most α, give or take three standard deviations of 400 draws.
        assert!(
            sequential <= 0.05 + 3.0 * 0.0109,
            "the sequential interval: {sequential}"
        );
    }
}
