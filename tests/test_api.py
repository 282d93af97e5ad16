"""The public names are a contract (STYLE.md section 8.6)."""

import types

import neurojax as nj


def _public(module):
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_top_level_names():
    assert _public(nj) == {
        "AbstractInput", "AbstractModel", "AbstractNeuron", "Checkpoint", "Drive", "LogNormal",
        "Network", "NetworkModel", "NetworkState", "Normal", "Population", "Projection", "Record",
        "Result", "Uniform", "allow_nonfinite_gradients", "check_grad", "simulate", "sweep",
    }
    assert {"analysis", "connectivity", "gallery", "inputs", "io", "neurons", "ode", "plasticity",
            "sharding", "surrogate", "synapses", "train"} <= set(vars(nj))


def test_subpackage_names():
    assert _public(nj.synapses) == {
        "AbstractKinetics", "AbstractReceptor", "Alpha", "AlphaState", "Conductance", "Current",
        "Delta", "DeltaState", "DualExponential", "DualExponentialState", "Exponential",
        "ExponentialState", "NMDA", "Saturating", "SaturatingState",
    }
    assert _public(nj.connectivity) == {
        "AbstractConnectivity", "AllToAll", "Dense", "DenseWeights", "FixedInDegree",
        "FixedProbability", "FromMatrix", "Sparse", "SparseWeights", "Synapses", "Events",
        "compact_events", "native_kernel_available", "native_kernel_status", "Procedural",
        "ProceduralWeights", "AbstractSpace", "DistanceDependent", "FeatureDependent", "Line",
        "LowRank", "Positions", "Ring", "Sheet", "FromEdges", "DistanceDelay", "ConstrainedWeights", "CellTypeTable",
        "RegionConnectome", "read_region_connectome",
    }
    assert _public(nj.plasticity) == {
        "AbstractPlasticity", "PairSTDP", "PairSTDPState", "TsodyksMarkram", "TsodyksMarkramState",
        "steady_state_ratio", "RewardModulated", "RewardModulatedState", "VoltageSTDP",
        "VoltageSTDPState", "TripletSTDP", "TripletSTDPState", "CalciumSTDP", "CalciumSTDPState",
        "calcium_stdp_change", "time_above_thresholds",
        "InhibitorySTDP", "InhibitorySTDPState", "BCM", "BCMState", "Oja", "OjaState",
        "Normalization", "NormalizationState", "SynapticScaling", "SynapticScalingState", "Chain",
    }
    assert _public(nj.inputs) == {
        "AbstractInput", "Constant", "HashStream", "OrnsteinUhlenbeck", "OrnsteinUhlenbeckState",
        "Poisson",
        "PoissonPopulation", "PoissonPopulationState", "PoissonState", "SpikeTrains",
        "SpikeTrainsState", "Waveform", "Tuned", "Modulator", "Pulses", "OnCompartments",
    }
    assert {"LIF", "ALIF", "ALIFState", "EIF", "AdEx", "Rate", "FiringRate", "WilsonCowan",
            "Binary", "Izhikevich", "FitzHughNagumo"} <= _public(nj.neurons)
    assert _public(nj.gallery) >= {"names", "get", "info", "whole_brain", "brunel_parameters"}
    assert {"balloon_windkessel", "bold_steady_state", "functional_connectivity",
            "fc_similarity"} <= _public(nj.analysis)
    assert {"isi_cv", "population_rate", "synchrony", "bin_spikes", "binned", "spike_arrays",
            "firing_rates", "population_activity", "instantaneous_rate", "rate_kernel", "cv",
            "cv2", "fano_factor", "correlation_matrix", "mean_correlation", "cross_correlogram",
            "power_spectrum", "synchrony_chi", "tuning_curve", "preferred_stimulus",
            "selectivity_index", "participation_ratio", "pca"} <= _public(nj.analysis)
    assert _public(nj.train) == {
        "check_grad", "GradCheck", "GradCheckRow", "AbstractConstraint", "Bounded", "DANN", "Dale",
        "Frozen", "Mask", "LowRankFactors", "constrain", "constrain_weights", "resolve", "trainable", "FitResult", "fit",
        "add_noise", "rate_cost", "spike_count_cost", "weight_l1", "weight_l2", "wiring_cost",
        "Decoder", "decode", "fit_decoder", "Profile", "eprop_loss", "eprop_run",
        "leaky_readout", "fit_steady_states", "SteadyStateFit", "force", "ForceResult", "pvar",
    }
    assert _public(nj.train.tasks) >= {"Trials", "perceptual_decision", "delayed_match_to_sample",
                                       "context_dependent_integration", "accuracy",
                                       "interval_timing", "produced_interval", "digits"}
    assert {"read_nwb", "read_nwb_session", "write_nwb"} <= _public(nj.io)
    assert {"fixed_points", "fixed_point", "jacobian", "eigenvalues", "classify", "is_isn",
            "paradoxical_response", "continuation", "lyapunov_exponent", "lyapunov_spectrum",
            "dmft_variance", "low_rank_mean_field", "siegert", "log_siegert", "lif_mean_field",
            "LIFMeanField", "lif_transfer_function", "lif_variance_transfer_function",
            } <= _public(nj.theory)
